/* Herald error codes: one X-macro table yields the HD_E* constants and hd_strerror().
 * Every fallible function returns 0 (or a length) on success, a negative HD_E* code on failure. */
#ifndef HD_ERROR_H
#define HD_ERROR_H

#define HD_ERRNO_MAP(X)                                                        \
  X(AGAIN, 1, "need more input")                                               \
  X(NOMEM, 2, "out of memory")                                                 \
  X(INVAL, 3, "invalid argument")                                              \
  X(PROTO, 4, "protocol error")                                                \
  X(TOOBIG, 5, "too large")                                                    \
  X(UTF8, 6, "invalid UTF-8")                                                  \
  X(NOTFOUND, 7, "not found")                                                  \
  X(FORBIDDEN, 8, "forbidden")                                                 \
  X(URITOOLONG, 9, "request line too long")                                    \
  X(HDRTOOBIG, 10, "request headers too large")                                \
  X(BODYTOOBIG, 11, "request body too large")                                  \
  X(METHOD, 12, "method not allowed")                                          \
  X(CLOSED, 13, "connection closed")                                           \
  X(IO, 14, "input/output error")                                              \
  X(DEFLATE, 15, "compression error")                                          \
  X(VERSION, 16, "unsupported version")                                        \
  X(BUSY, 17, "server busy")                                                   \
  X(TIMEOUT, 18, "timed out")                                                  \
  X(EXISTS, 19, "already exists")                                              \
  X(RANGE, 20, "value out of range")

enum {
#define HD_ERR_ENUM(name, num, msg) HD_E##name = -(num),
  HD_ERRNO_MAP(HD_ERR_ENUM)
#undef HD_ERR_ENUM
};

/* Human-readable message for an HD_E* code (or "unknown error"); never NULL. */
const char *hd_strerror(int err);
/* Symbolic name for an HD_E* code, e.g. "EPROTO"; never NULL. */
const char *hd_errname(int err);

#endif
