/* Path resolution for the server's own files (see path.h). */
#include "core/path.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

int hd_path_resolve(const char *path, char out[PATH_MAX]) {
  if (realpath(path, out)) return 0;
  if (path[0] == '/') return HD_ENOTFOUND;
  char exe[PATH_MAX], candidate[PATH_MAX * 2];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return HD_ENOTFOUND;
  exe[n] = '\0';
  char *bin_dir = dirname(exe);     /* .../build */
  char *root = dirname(bin_dir);    /* ... */
  snprintf(candidate, sizeof candidate, "%s/%s", root, path);
  return realpath(candidate, out) ? 0 : HD_ENOTFOUND;
}
