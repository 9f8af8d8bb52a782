/* The application's HTTP surface: registers every route on a shard's router. */
#ifndef HD_APP_H
#define HD_APP_H

#include "net/server.h"

/* Registers health, metrics, the optional echo endpoint and static files. 0 or HD_E*. */
int hd_app_register(hd_server_t *s);

#endif
