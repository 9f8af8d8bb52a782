/* Notifications: send (to one admin or every admin), list, unread count, mark read (REST and notification:mark_read) and read all, each stored before it is pushed. */
#ifndef HD_NOTIFICATIONS_H
#define HD_NOTIFICATIONS_H

typedef struct hd_app hd_app_t;

/* Registers the routes and Socket.IO handlers. 0 or HD_E*. */
int hd_notifications_register(hd_app_t *app);

#endif
