/* The Socket.IO Admin UI (--admin-ui): the server side of npm @socket.io/admin-ui 0.5 on namespace
 * /admin — admin sign-in (user name and password of a Herald admin, a session id it hands out, or an
 * admin token), `config`, `all_sockets`, the live `socket_connected` / `socket_disconnected` /
 * `room_joined` / `room_left` / `event_received` / `event_sent` events, `server_stats` every 2 s per
 * node, and the actions `emit`, `join`, `leave`, `_disconnect` — plus the stock UI's files (its
 * ui/dist, from --admin-ui-root) at /socket-admin/. docs/admin-ui.md has the details. */
#ifndef HD_ADMIN_UI_H
#define HD_ADMIN_UI_H

typedef struct hd_app hd_app_t;

#define HD_ADMIN_UI_NAMESPACE "/admin"

/* Sets up this shard's part when --admin-ui is on (the namespace must be configured; the app's
 * setup adds it): watchers, actions, sign-in, the stats timer (shard 0) and the /socket-admin/
 * route. 0 or HD_E* with a logged reason. */
int hd_admin_ui_register(hd_app_t *app);
/* Stops the stats timer and frees this shard's part (before the Socket.IO server is freed). */
void hd_admin_ui_free(hd_app_t *app);

#endif
