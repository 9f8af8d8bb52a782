/* Locating the server's own files (web root, client bundles) from any working directory. */
#ifndef HD_PATH_H
#define HD_PATH_H

#include <limits.h>

/* The real path of `path`: as given, or — for a relative path that does not exist from the working
 * directory — relative to the parent of the directory holding the herald binary (the checkout when
 * it runs from build/). 0 with out filled, or HD_ENOTFOUND. */
int hd_path_resolve(const char *path, char out[PATH_MAX]);

#endif
