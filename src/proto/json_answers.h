/* The answers of a JSON-protocol connection in the order of the client's frames. A publish is
 * answered once every shard has delivered it, which may be after the frames behind it were handled:
 * its answer reserves a place, and answers behind it wait there (copied) until it is filled, so a
 * client that pipelines publishes gets every ack in order while the server goes on working. */
#ifndef HD_JSON_ANSWERS_H
#define HD_JSON_ANSWERS_H

#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"

typedef struct hd_answer hd_answer_t;

typedef struct {
  hd_answer_t *first, *last; /* answers not sent yet, oldest first */
  uint32_t reserved;         /* ... of which places not filled yet */
  size_t bytes;              /* ... and the bytes waiting */
} hd_answers_t;

/* Sends the text frame now when nothing waits before it, else queues a copy. 0 or HD_E* (the
 * connection's send error, or HD_ENOMEM). */
int hd_answers_send(hd_answers_t *a, hd_conn_t *c, const char *frame, size_t len);
/* Reserves the place of an answer that comes later; NULL when out of memory. */
hd_answer_t *hd_answers_reserve(hd_answers_t *a);
/* Fills a reserved place (frame NULL: nothing to send there) and sends the answers that are ready
 * from the oldest on. */
void hd_answers_fill(hd_answers_t *a, hd_conn_t *c, hd_answer_t *at, const char *frame, size_t len);
/* Forgets every waiting answer (the connection is going away). */
void hd_answers_free(hd_answers_t *a);

#endif
