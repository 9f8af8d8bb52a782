/* Answers of a JSON-protocol connection, sent in request order (see json_answers.h). */
#include "proto/json_answers.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "net/ws_conn.h"

struct hd_answer {
  hd_answer_t *next;
  bool ready;
  size_t len;
  char *frame; /* NULL with ready: nothing to send */
};

static hd_answer_t *push(hd_answers_t *a) {
  hd_answer_t *x = calloc(1, sizeof(*x));
  if (!x) return NULL;
  if (a->last) a->last->next = x;
  else a->first = x;
  a->last = x;
  return x;
}

static int set_frame(hd_answers_t *a, hd_answer_t *x, const char *frame, size_t len) {
  x->ready = true;
  if (!frame) return 0;
  if (!(x->frame = malloc(len ? len : 1))) return HD_ENOMEM;
  memcpy(x->frame, frame, len);
  x->len = len;
  a->bytes += len;
  return 0;
}

/* Sends the ready answers at the head. */
static void flush(hd_answers_t *a, hd_conn_t *c) {
  while (a->first && a->first->ready) {
    hd_answer_t *x = a->first;
    a->first = x->next;
    if (!a->first) a->last = NULL;
    if (x->frame) hd_ws_send(c, HD_WS_OP_TEXT, x->frame, x->len);
    a->bytes -= x->len;
    free(x->frame);
    free(x);
  }
}

int hd_answers_send(hd_answers_t *a, hd_conn_t *c, const char *frame, size_t len) {
  if (!a->first) return hd_ws_send(c, HD_WS_OP_TEXT, frame, len);
  hd_answer_t *x = push(a);
  return x ? set_frame(a, x, frame, len) : HD_ENOMEM;
}

hd_answer_t *hd_answers_reserve(hd_answers_t *a) {
  hd_answer_t *x = push(a);
  if (x) a->reserved++;
  return x;
}

void hd_answers_fill(hd_answers_t *a, hd_conn_t *c, hd_answer_t *at, const char *frame, size_t len) {
  a->reserved--;
  if (set_frame(a, at, frame, len)) at->frame = NULL; /* out of memory: that answer is lost, not the rest */
  flush(a, c);
}

void hd_answers_free(hd_answers_t *a) {
  for (hd_answer_t *x = a->first, *next; x; x = next) {
    next = x->next;
    free(x->frame);
    free(x);
  }
  *a = (hd_answers_t){0};
}
