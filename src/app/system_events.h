/* System events: POST /api/v4/system/alerts, /maintenance and /status pushed as system:alert, system:maintenance and system:status_change to admins (or everyone). */
#ifndef HD_SYSTEM_EVENTS_H
#define HD_SYSTEM_EVENTS_H

typedef struct hd_app hd_app_t;

/* Registers the routes and Socket.IO handlers. 0 or HD_E*. */
int hd_system_events_register(hd_app_t *app);

#endif
