/* Customer-service chat: sessions, messages over REST and chat:send_message, least-loaded assignment with a waiting queue, typing relay, reassign and close. */
#ifndef HD_CHAT_H
#define HD_CHAT_H

typedef struct hd_app hd_app_t;

/* Registers the routes and Socket.IO handlers. 0 or HD_E*. */
int hd_chat_register(hd_app_t *app);

#endif
