/* Error code names and messages, generated from the HD_ERRNO_MAP table. */
#include "core/error.h"

const char *hd_strerror(int err) {
  switch (err) {
#define HD_ERR_MSG(name, num, msg) case -(num): return msg;
    HD_ERRNO_MAP(HD_ERR_MSG)
#undef HD_ERR_MSG
  }
  return err == 0 ? "success" : "unknown error";
}

const char *hd_errname(int err) {
  switch (err) {
#define HD_ERR_NAME(name, num, msg) case -(num): return "E" #name;
    HD_ERRNO_MAP(HD_ERR_NAME)
#undef HD_ERR_NAME
  }
  return err == 0 ? "OK" : "EUNKNOWN";
}
