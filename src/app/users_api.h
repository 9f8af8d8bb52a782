/* The users API (/api/v4/users, JSON): who people are, by name, for the pages.
 *   GET   /api/v4/users?q=&role=&limit=      admin: search by name or display name
 *   GET   /api/v4/users/names?ids=1,2,...    anyone signed in: display names (a customer sees
 *                                            admins and themselves only)
 *   GET   /api/v4/users/online-admins        admin: the admins online now, with their names
 *   PATCH /api/v4/users/:id {display_name}   admin: rename */
#ifndef HD_USERS_API_H
#define HD_USERS_API_H

typedef struct hd_app hd_app_t;

/* Routes the users API. 0 or HD_E*. */
int hd_users_api_register(hd_app_t *app);

#endif
