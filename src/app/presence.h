/* Who is online over Socket.IO: on connect a socket joins its identity's rooms (`admins` and
 * `admin:<id>` for admins, `user:<id>` for users); online admins are counted for the customer-service
 * assignment; the legacy `register_user` event is accepted only when it names the token's identity. */
#ifndef HD_PRESENCE_H
#define HD_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hd_app hd_app_t;
typedef struct hd_presence_shared hd_presence_shared_t;

/* The node-wide presence counts shared by every shard's app; NULL when out of memory. */
hd_presence_shared_t *hd_presence_shared_new(void);
void hd_presence_shared_free(hd_presence_shared_t *sh);

/* Called when an admin's first socket connects (to assign waiting sessions). */
typedef void (*hd_presence_admin_fn)(hd_app_t *app, int64_t admin_id, void *arg);

/* Registers the connect/disconnect handlers on namespace "/" of this shard (counting into
 * app->shared->presence). 0 or HD_E*. */
int hd_presence_register(hd_app_t *app);
void hd_presence_free(hd_app_t *app);
/* Sets the one listener told when an admin comes online. */
void hd_presence_on_admin_online(hd_app_t *app, hd_presence_admin_fn fn, void *arg);
/* Online admins' ids into ids (at most max); returns how many are online. */
size_t hd_presence_online_admins(const hd_app_t *app, int64_t *ids, size_t max);
bool hd_presence_admin_online(const hd_app_t *app, int64_t admin_id);
/* Sockets online right now, by role. */
size_t hd_presence_count(const hd_app_t *app, const char *role);

#endif
