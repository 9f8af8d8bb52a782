/* The store's machinery: requests validated and copied on a loop thread, queued under one mutex,
 * run by one store thread in group-committed batches (one transaction per batch, a savepoint per
 * write when needed: see run_batch), and answered on the loop thread of the handle that submitted them, through that handle's
 * uv_async_t, in submission order.
 *
 * One shared part (database, store thread, queue, statistics) serves any number of handles, one per
 * loop: hd_store_open makes it with the first handle, hd_store_attach adds handles, and the last
 * hd_store_close releases it. A batch may mix handles; the store thread moves each finished request
 * to its own handle's done list. A handle's close waits until the thread has handed over all of its
 * requests, so the thread never touches a handle that is gone.
 *
 * Ownership: a request (inputs, result, arena) belongs to its handle's loop thread until it is
 * queued, to the store thread while it runs, and to that loop thread again once it is in the done
 * list; the mutex hand-offs order every access. The database handle is touched only by the store
 * thread. */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "store/backend.h"

#define BATCH_MAX 4096 /* requests in one transaction */

/* The shared part: one database, one store thread, the queue, the statistics. */
typedef struct {
  uv_thread_t thread;
  const hd_store_backend_t *be;
  void *db;                        /* store thread only (and close, after the join) */
  char *path;
  atomic_size_t outstanding;       /* submitted through any handle and not yet answered */
  atomic_uint_least64_t answered;
  hd_log_limit_t failure_log;      /* store thread only: transaction failures logged at most every 10 s */

  uv_mutex_t mu;                   /* guards everything down to the end, and each handle's done and pending */
  uv_cond_t wake;                  /* to the store thread: requests queued, or stopping */
  uv_cond_t ready;                 /* to hd_store_open: the database opened (or failed) */
  uv_cond_t handed;                /* to closing handles: a batch went to the done lists */
  hd_store_req_t *queue, *queue_tail;
  size_t queue_len;
  size_t queue_bytes;              /* of the requests queued or running (their copies), until handed over */
  size_t queue_bytes_max;          /* 0: no bound */
  size_t handles;                  /* open handles: the last one to close releases everything */
  bool stopping;
  bool opened;
  int open_rc;
  char open_err[256];
  bool last_failed;
  uint64_t commits, failed;
  uint64_t last_commit_us;
  hd_histogram_t commit_duration;  /* write transactions, BEGIN to COMMIT */
  size_t last_batch, max_batch;
  bool db_closed;                  /* then the figures below replace the backend's */
  hd_store_backend_stats_t final_stats;
  bool final_has_thread;
  uv_thread_t final_thread;
} shared_t;

/* A handle: one loop's door to the shared store; its requests are answered on its loop. */
struct hd_store {
  shared_t *sh;
  uv_async_t *async;               /* malloc'd: freed by its close callback, which may come after st is gone */

  /* under sh->mu */
  hd_store_req_t *done, *done_tail;
  size_t pending;                  /* submitted, not yet in done: the store thread may still touch st */

  /* loop thread only */
  hd_store_req_t *running;         /* taken from done, being answered */
  int dispatching;                 /* depth of answer loops on the stack */
  bool closing;
  bool free_pending;               /* closed inside a callback: free when the answer loop unwinds */
};

/* --- arena, lists, operation table --------------------------------------------------------------- */

struct hd_store_block {
  hd_store_block_t *next;
  size_t used, cap;
  alignas(max_align_t) unsigned char data[];
};

void *hd_store_arena_alloc(hd_store_arena_t *a, size_t size) {
  const size_t align = alignof(max_align_t);
  size = (size + align - 1) & ~(align - 1);
  hd_store_block_t *b = a->head;
  if (!b || b->cap - b->used < size) {
    size_t cap = b ? b->cap * 2 : 512;
    if (cap > 65536) cap = 65536;
    if (cap < size) cap = size;
    b = malloc(sizeof *b + cap);
    if (!b) return NULL;
    b->used = 0;
    b->cap = cap;
    b->next = a->head;
    a->head = b;
  }
  void *p = b->data + b->used;
  b->used += size;
  return p;
}

char *hd_store_arena_strndup(hd_store_arena_t *a, const char *s, size_t len) {
  char *p = hd_store_arena_alloc(a, len + 1);
  if (!p) return NULL;
  if (len) memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

void hd_store_arena_free(hd_store_arena_t *a) {
  while (a->head) {
    hd_store_block_t *next = a->head->next;
    free(a->head);
    a->head = next;
  }
}

void *hd_store_req_list(hd_store_req_t *r, size_t size, size_t *count) {
  if (*count == r->list_cap) {
    size_t cap = r->list_cap ? r->list_cap * 2 : 16;
    void *p = realloc(r->list, cap * size);
    if (!p) return NULL;
    r->list = p;
    r->list_cap = cap;
  }
  void *item = (char *)r->list + *count * size;
  memset(item, 0, size);
  (*count)++;
  return item;
}

static const bool op_writes[HD_STORE_OP_COUNT] = {
#define OP_WRITES(name, w) [HD_STORE_OP_##name] = w,
    HD_STORE_OPS(OP_WRITES)
#undef OP_WRITES
};

bool hd_store_op_writes(hd_store_op_t op) { return op_writes[op]; }

/* What a request holds in memory: itself and its copies. */
static size_t req_bytes(const hd_store_req_t *r) {
  size_t n = sizeof *r;
  for (const hd_store_block_t *b = r->arena.head; b; b = b->next) n += sizeof *b + b->cap;
  return n;
}

static void req_free(hd_store_req_t *r) {
  hd_store_arena_free(&r->arena);
  free(r->list);
  free(r);
}

/* --- validation ------------------------------------------------------------------------------- */

/* Code points in a valid UTF-8 string, or -1 when invalid (overlong, surrogate, > U+10FFFF). */
static long utf8_chars(const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  long n = 0;
  while (*s) {
    unsigned c = *s, len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4)) return -1;
    for (unsigned i = 1; i < len; i++)
      if ((s[i] & 0xc0) != 0x80) return -1;
    if (len == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))) return -1;
    if (len == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))) return -1;
    s += len;
    n++;
  }
  return n;
}

/* True for valid UTF-8 text of min..max characters. */
static bool text_ok(const char *s, long min, long max) {
  if (!s) return false;
  long n = utf8_chars(s);
  return n >= min && n <= max;
}

static bool one_of(const char *s, const char *a, const char *b, const char *c, const char *d) {
  return s && ((a && !strcmp(s, a)) || (b && !strcmp(s, b)) || (c && !strcmp(s, c)) || (d && !strcmp(s, d)));
}

static bool role_ok(const char *s) { return one_of(s, "admin", "user", NULL, NULL); }
static bool msg_type_ok(const char *s) { return one_of(s, "text", "image", "file", "system"); }
static bool limit_ok(int limit) { return limit >= 1 && limit <= HD_STORE_LIST_MAX; }

/* --- submission (loop thread) ---------------------------------------------------------------- */

static hd_store_req_t *req_new(hd_store_op_t op, void *arg) {
  hd_store_req_t *r = calloc(1, sizeof *r);
  if (r) {
    r->op = op;
    r->arg = arg;
  }
  return r;
}

/* Copies s into the request's arena as *dst (NULL stays NULL); false when out of memory. */
static bool dup(hd_store_req_t *r, const char **dst, const char *s) {
  *dst = NULL;
  if (!s) return true;
  return (*dst = hd_store_arena_strndup(&r->arena, s, strlen(s))) != NULL;
}

/* Queues r (taking ownership either way); 0 or HD_E*. */
static int submit(hd_store_t *st, hd_store_req_t *r) {
  if (st->closing) {
    req_free(r);
    return HD_ECLOSED;
  }
  shared_t *sh = st->sh;
  r->handle = st;
  r->bytes = req_bytes(r);
  uv_mutex_lock(&sh->mu);
  if (sh->queue_len >= HD_STORE_QUEUE_MAX ||
      (sh->queue_bytes_max && sh->queue_bytes && sh->queue_bytes + r->bytes > sh->queue_bytes_max)) {
    uv_mutex_unlock(&sh->mu);
    req_free(r);
    return HD_EBUSY;
  }
  sh->queue_bytes += r->bytes;
  if (sh->queue_tail) sh->queue_tail->next = r;
  else sh->queue = r;
  sh->queue_tail = r;
  sh->queue_len++;
  st->pending++;
  atomic_fetch_add_explicit(&sh->outstanding, 1, memory_order_relaxed);
  uv_cond_signal(&sh->wake);
  uv_mutex_unlock(&sh->mu);
  return 0;
}

#define NEW_REQ(op, member)                                   \
  hd_store_req_t *r = req_new(HD_STORE_OP_##op, arg);         \
  if (!r) return HD_ENOMEM;                                   \
  r->cb.member = cb

#define DUP_OR_FAIL(dst, src)                                 \
  do {                                                        \
    if (!dup(r, (const char **)&(dst), (src))) {              \
      req_free(r);                                            \
      return HD_ENOMEM;                                       \
    }                                                         \
  } while (0)

/* --- the store thread ---------------------------------------------------------------------------- */

static void fail_all(hd_store_req_t *batch, int status) {
  for (hd_store_req_t *r = batch; r; r = r->next) r->status = status;
}

/* Forgets what a pass over the batch produced, to run it again. */
static void reset_results(hd_store_req_t *batch) {
  for (hd_store_req_t *r = batch; r; r = r->next) {
    r->status = 0;
    r->oom = false;
    memset(&r->out, 0, sizeof r->out);
  }
}

/* The inbox puts, one entry at a time through the backend's inbox_put_one. */
static int inbox_put(shared_t *sh, hd_store_req_t *r) {
  if (r->op == HD_STORE_OP_INBOX_PUT) {
    hd_store_inbox_entry_t e = {r->in.inbox.user_sub, r->in.inbox.message_id, r->in.inbox.frame, r->in.inbox.frame_len};
    return sh->be->inbox_put_one(sh->db, &e, r->in.inbox.cap, &r->out.inbox_put.inserted, &r->out.inbox_put.dropped);
  }
  hd_store_inbox_puts_t *out = &r->out.inbox_puts;
  for (size_t i = 0; i < r->in.inbox_many.count; i++) {
    bool added;
    int64_t dropped = 0;
    int rc = sh->be->inbox_put_one(sh->db, &r->in.inbox_many.items[i], r->in.inbox_many.cap, &added, &dropped);
    if (rc) return rc;
    out->inserted += added;
    out->dropped += dropped;
  }
  return 0;
}

/* A topic history save: the entries, each topic trimmed once at the end of its run, then the
 * expiry and the clean mark. */
static int topics_save(shared_t *sh, hd_store_req_t *r) {
  const hd_store_topic_entry_t *items = r->in.topics.items;
  size_t n = r->in.topics.count;
  int64_t inserted = 0;
  for (size_t i = 0; i < n; i++) {
    bool added;
    int rc = sh->be->topic_insert(sh->db, &items[i], &added);
    if (rc) return rc;
    inserted += added;
    bool last_of_topic = i + 1 == n || strcmp(items[i + 1].topic, items[i].topic);
    if (last_of_topic && (rc = sh->be->topic_trim(sh->db, items[i].topic, r->in.topics.keep))) return rc;
  }
  r->out.count.count = inserted;
  return sh->be->topics_saved(sh->db, r->in.topics.min_created_at, r->in.topics.clean);
}

/* Runs one request on the backend. */
static int exec(shared_t *sh, hd_store_req_t *r) {
  if (r->op == HD_STORE_OP_INBOX_PUT || r->op == HD_STORE_OP_INBOX_PUT_MANY) return inbox_put(sh, r);
  if (r->op == HD_STORE_OP_TOPICS_SAVE) return topics_save(sh, r);
  return sh->be->exec(sh->db, r);
}

/* Runs one batch in one transaction; every request gets its status. A write normally runs inside a
 * savepoint, so that a failing request fails alone. Without savepoints: a request alone (when it
 * fails, the transaction is rolled back), and first every batch on a backend whose savepoints cost
 * round trips (`aborted` set, PostgreSQL): if a request breaks that transaction, it is rolled back
 * and the batch runs again with savepoints. */
static void run_batch(shared_t *sh, hd_store_req_t *batch, size_t n) {
  bool writes = false;
  for (hd_store_req_t *r = batch; r; r = r->next) writes |= hd_store_op_writes(r->op);
  uint64_t t0 = hd_clock_mono_ns();
  bool plain = n == 1 || sh->be->aborted;
  int lost;
  for (;;) {
    bool again = false;
    lost = sh->be->begin(sh->db, writes);
    for (hd_store_req_t *r = batch; r && !lost; r = r->next) {
      if (plain || !hd_store_op_writes(r->op)) {
        r->status = exec(sh, r);
        if (plain && n > 1 && r->status && (r->status == HD_ENOMEM || sh->be->aborted(sh->db))) {
          again = true;
          break;
        }
        continue;
      }
      if ((lost = sh->be->savepoint(sh->db))) break;
      r->status = exec(sh, r);
      lost = r->status ? sh->be->undo(sh->db) : sh->be->release(sh->db);
    }
    if (!again) break;
    sh->be->rollback(sh->db);
    reset_results(batch);
    plain = false;
  }
  if (!lost && n == 1 && batch->status) {
    sh->be->rollback(sh->db); /* keeps the request's own status */
    writes = false;
  } else if (!lost) {
    lost = sh->be->commit(sh->db);
  }
  if (lost) {
    sh->be->rollback(sh->db);
    fail_all(batch, lost == HD_EBUSY ? HD_EBUSY : HD_EIO);
    unsigned long long skipped;
    if (hd_log_limit_pass(&sh->failure_log, 10000, &skipped)) /* one line per 10 s while the disk fails */
      HD_ERROR("store", "transaction failed", "requests=%zu err=%s failures_not_logged=%llu", n, hd_errname(lost), skipped);
  }
  uint64_t us = (hd_clock_mono_ns() - t0) / 1000;
  uv_mutex_lock(&sh->mu);
  sh->last_failed = lost != 0;
  if (lost) {
    sh->failed++;
  } else if (writes) {
    sh->commits++;
    sh->last_commit_us = us;
    hd_histogram_observe(&sh->commit_duration, us);
  }
  sh->last_batch = n;
  if (n > sh->max_batch) sh->max_batch = n;
  uv_mutex_unlock(&sh->mu);
}

/* Under sh->mu: moves each request of a finished batch to the done list of its handle, in order,
 * waking that handle's loop when its list was empty (a non-empty one has a wake-up on the way). A
 * handle's close waits under the mutex until its pending count is 0, so st and its async live here. */
static void hand_over(hd_store_req_t *batch) {
  while (batch) {
    hd_store_req_t *r = batch;
    hd_store_t *st = r->handle;
    batch = r->next;
    r->next = NULL;
    st->sh->queue_bytes -= r->bytes;
    if (st->done_tail) {
      st->done_tail->next = r;
    } else {
      st->done = r;
      uv_async_send(st->async);
    }
    st->done_tail = r;
    st->pending--;
  }
}

static void thread_main(void *p) {
  shared_t *sh = p;
  int applied = 0;
  char err[sizeof sh->open_err] = "";
  int rc = sh->be->open(sh->path, &sh->db, &applied, err, sizeof err);
  uv_mutex_lock(&sh->mu);
  sh->opened = true;
  sh->open_rc = rc;
  memcpy(sh->open_err, err, sizeof err);
  uv_cond_signal(&sh->ready);
  uv_mutex_unlock(&sh->mu);
  if (rc) return;
  char shown[512];
  if (applied) HD_INFO("store", "migrations applied", "count=%d path=%s", applied,
                       hd_store_redact(sh->path, shown, sizeof shown));

  for (;;) {
    uv_mutex_lock(&sh->mu);
    while (!sh->queue && !sh->stopping) uv_cond_wait(&sh->wake, &sh->mu);
    hd_store_req_t *batch = sh->queue, *last = batch;
    size_t n = batch ? 1 : 0;
    if (!batch) { /* stopping: the last handle closed, nothing is queued */
      uv_mutex_unlock(&sh->mu);
      break;
    }
    while (last->next && n < BATCH_MAX) {
      last = last->next;
      n++;
    }
    sh->queue = last->next;
    if (!sh->queue) sh->queue_tail = NULL;
    sh->queue_len -= n;
    last->next = NULL;
    uv_mutex_unlock(&sh->mu);

    run_batch(sh, batch, n);

    uv_mutex_lock(&sh->mu);
    hand_over(batch);
    uv_cond_broadcast(&sh->handed);
    uv_mutex_unlock(&sh->mu);
  }
  uv_mutex_lock(&sh->mu); /* health and sql_thread read the closed database's last figures */
  sh->be->stats(sh->db, &sh->final_stats);
  sh->final_has_thread = sh->be->last_thread(sh->db, &sh->final_thread);
  sh->db_closed = true;
  uv_mutex_unlock(&sh->mu);
  sh->be->close(sh->db);
}

/* --- answers (loop thread) --------------------------------------------------------------------- */

static void answer(hd_store_req_t *r) {
  int s = r->status;
#define CALL(member, result) \
  if (r->cb.member) r->cb.member(r->arg, s, s ? NULL : &r->out.result)
  switch (r->op) {
  case HD_STORE_OP_USER_CREATE:
  case HD_STORE_OP_USER_GET_BY_NAME:
  case HD_STORE_OP_USER_GET:
  case HD_STORE_OP_USER_UPDATE:
  case HD_STORE_OP_USER_DELETE: CALL(user, user); break;
  case HD_STORE_OP_USERS_LIST:
  case HD_STORE_OP_USERS_SEARCH:
  case HD_STORE_OP_USER_STATES:
  case HD_STORE_OP_USERS_GET_MANY: CALL(users, users); break;
  case HD_STORE_OP_USERS_VERSION: CALL(count, count); break;
  case HD_STORE_OP_NOTIFICATION_CREATE: CALL(notification, notification); break;
  case HD_STORE_OP_NOTIFICATIONS_LIST: CALL(notifications, notifications); break;
  case HD_STORE_OP_NOTIFICATIONS_UNREAD:
  case HD_STORE_OP_NOTIFICATIONS_MARK_ALL:
  case HD_STORE_OP_INBOX_REMOVE:
  case HD_STORE_OP_PRUNE: CALL(count, count); break;
  case HD_STORE_OP_INBOX_PUT_MANY: CALL(inbox_puts, inbox_puts); break;
  case HD_STORE_OP_TOPICS_SAVE: CALL(count, count); break;
  case HD_STORE_OP_TOPICS_LOAD: CALL(topics, topics); break;
  case HD_STORE_OP_NOTIFICATION_MARK_READ: CALL(notification_read, notification_read); break;
  case HD_STORE_OP_SESSION_CREATE:
  case HD_STORE_OP_MESSAGE_CREATE: CALL(chat_post, chat_post); break;
  case HD_STORE_OP_SESSION_GET:
  case HD_STORE_OP_SESSION_ASSIGN:
  case HD_STORE_OP_SESSION_CLAIM:
  case HD_STORE_OP_SESSION_MARK_READ:
  case HD_STORE_OP_SESSION_SET_PRIORITY: CALL(session, session); break;
  case HD_STORE_OP_SESSIONS_LIST:
  case HD_STORE_OP_SESSIONS_WAITING: CALL(sessions, sessions); break;
  case HD_STORE_OP_SESSION_CLOSE: CALL(session_close, session_close); break;
  case HD_STORE_OP_ADMIN_LOADS: CALL(admin_loads, admin_loads); break;
  case HD_STORE_OP_MESSAGES_LIST: CALL(messages, messages); break;
  case HD_STORE_OP_INBOX_PUT: CALL(inbox_put, inbox_put); break;
  case HD_STORE_OP_INBOX_TAKE: CALL(inbox, inbox); break;
  case HD_STORE_OP_COUNT: break;
  }
#undef CALL
}

/* Answers what the store thread has handed to st, in order; all: until nothing is left (close),
 * else one hand-off's worth, so callbacks that submit more cannot starve the loop. A callback may
 * close st (the last handle: then sh is gone), so after one returns nothing touches sh unless st
 * still has requests to answer. */
static void dispatch(hd_store_t *st, bool all) {
  shared_t *sh = st->sh;
  st->dispatching++;
  bool refilled = false;
  for (;;) {
    if (!st->running) {
      if (refilled && !all) break;
      uv_mutex_lock(&sh->mu);
      st->running = st->done;
      st->done = st->done_tail = NULL;
      uv_mutex_unlock(&sh->mu);
      refilled = true;
      if (!st->running) break;
    }
    hd_store_req_t *r = st->running;
    st->running = r->next;
    atomic_fetch_sub_explicit(&sh->outstanding, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sh->answered, 1, memory_order_relaxed);
    answer(r);
    req_free(r);
  }
  if (--st->dispatching == 0 && st->free_pending) free(st);
}

static void on_async(uv_async_t *h) {
  if (h->data) dispatch(h->data, false);
}

static void on_async_closed(uv_handle_t *h) { free(h); }

/* --- lifecycle --------------------------------------------------------------------------------- */

static const hd_store_backend_t *backend_for(const char *path, char *err, size_t errlen) {
  (void)err, (void)errlen;
  if (!strncmp(path, "postgres://", 11) || !strncmp(path, "postgresql://", 13)) return &hd_store_pg_backend;
  return &hd_store_sqlite_backend;
}

static void shared_free(shared_t *sh) {
  uv_mutex_destroy(&sh->mu);
  uv_cond_destroy(&sh->wake);
  uv_cond_destroy(&sh->ready);
  uv_cond_destroy(&sh->handed);
  free(sh->path);
  free(sh);
}

/* The shared part with one handle counted and no thread yet, or NULL. */
static shared_t *shared_new(const hd_store_backend_t *be, const char *path) {
  shared_t *sh = calloc(1, sizeof *sh);
  if (!sh) return NULL;
  if (!(sh->path = strdup(path))) {
    free(sh);
    return NULL;
  }
  sh->be = be;
  sh->handles = 1;
  atomic_init(&sh->outstanding, 0);
  atomic_init(&sh->answered, 0);
  int step = 0; /* how many of the primitives below exist, to undo on failure */
  if (!uv_mutex_init(&sh->mu)) step = 1;
  if (step == 1 && !uv_cond_init(&sh->wake)) step = 2;
  if (step == 2 && !uv_cond_init(&sh->ready)) step = 3;
  if (step == 3 && !uv_cond_init(&sh->handed)) step = 4;
  if (step == 4) return sh;
  if (step >= 3) uv_cond_destroy(&sh->ready);
  if (step >= 2) uv_cond_destroy(&sh->wake);
  if (step >= 1) uv_mutex_destroy(&sh->mu);
  free(sh->path);
  free(sh);
  return NULL;
}

/* A handle on sh answered on loop (not yet counted in sh->handles), or NULL. */
static hd_store_t *handle_new(shared_t *sh, uv_loop_t *loop) {
  hd_store_t *st = calloc(1, sizeof *st);
  uv_async_t *async = malloc(sizeof *async);
  if (!st || !async || uv_async_init(loop, async, on_async)) {
    free(st);
    free(async);
    return NULL;
  }
  async->data = st;
  st->sh = sh;
  st->async = async;
  return st;
}

/* Frees a handle that never submitted anything (open failed). */
static void handle_drop(hd_store_t *st) {
  st->async->data = NULL;
  uv_close((uv_handle_t *)st->async, on_async_closed);
  free(st);
}

void hd_store_set_queue_bytes(hd_store_t *st, size_t max) {
  uv_mutex_lock(&st->sh->mu);
  st->sh->queue_bytes_max = max;
  uv_mutex_unlock(&st->sh->mu);
}

hd_store_t *hd_store_open(uv_loop_t *loop, const char *path, char *err, size_t errlen) {
  if (errlen) err[0] = '\0';
  const hd_store_backend_t *be = backend_for(path, err, errlen);
  if (!be) return NULL;
  shared_t *sh = shared_new(be, path);
  hd_store_t *st = sh ? handle_new(sh, loop) : NULL;
  if (!st || uv_thread_create(&sh->thread, thread_main, sh)) {
    snprintf(err, errlen, "%s", sh && st ? "cannot start the store thread" : "out of memory");
    if (st) handle_drop(st);
    if (sh) shared_free(sh);
    return NULL;
  }
  uv_mutex_lock(&sh->mu);
  while (!sh->opened) uv_cond_wait(&sh->ready, &sh->mu);
  int rc = sh->open_rc;
  uv_mutex_unlock(&sh->mu);
  if (rc) {
    uv_thread_join(&sh->thread);
    snprintf(err, errlen, "%s", sh->open_err[0] ? sh->open_err : hd_strerror(rc));
    handle_drop(st);
    shared_free(sh);
    return NULL;
  }
  return st;
}

hd_store_t *hd_store_attach(hd_store_t *st, uv_loop_t *loop) {
  shared_t *sh = st->sh;
  hd_store_t *h = handle_new(sh, loop);
  if (!h) return NULL;
  uv_mutex_lock(&sh->mu);
  sh->handles++;
  uv_mutex_unlock(&sh->mu);
  return h;
}

void hd_store_close(hd_store_t *st) {
  if (!st || st->closing) return;
  st->closing = true;
  shared_t *sh = st->sh;
  uv_mutex_lock(&sh->mu); /* until the store thread has handed over st's last request */
  while (st->pending) uv_cond_wait(&sh->handed, &sh->mu);
  uv_mutex_unlock(&sh->mu);
  dispatch(st, true);
  uv_mutex_lock(&sh->mu);
  bool last = --sh->handles == 0;
  if (last) {
    sh->stopping = true;
    uv_cond_signal(&sh->wake);
  }
  uv_mutex_unlock(&sh->mu); /* unless last, sh may be gone from here on: another thread may free it */
  if (last) {
    uv_thread_join(&sh->thread); /* nothing queued: the thread closes the database and ends */
    shared_free(sh);
  }
  st->async->data = NULL;
  uv_close((uv_handle_t *)st->async, on_async_closed);
  if (st->dispatching) st->free_pending = true;
  else free(st);
}

int hd_store_migrate_path(const char *path, char *err, size_t errlen) {
  if (errlen) err[0] = '\0';
  const hd_store_backend_t *be = backend_for(path, err, errlen);
  if (!be) return HD_EINVAL;
  void *db = NULL;
  int applied = 0;
  int rc = be->open(path, &db, &applied, err, errlen);
  if (rc) return rc;
  be->close(db);
  return applied;
}

const char *hd_store_redact(const char *path, char *buf, size_t len) {
  const char *scheme = strstr(path, "://"), *at = scheme ? strchr(scheme + 3, '@') : NULL;
  const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
  if (colon) snprintf(buf, len, "%.*s:***%s", (int)(colon - path), path, at);
  else snprintf(buf, len, "%s", path);
  return buf;
}

const char *hd_store_backend_name(const hd_store_t *st) { return st->sh->be->name; }

int hd_store_health(hd_store_t *st, hd_store_health_t *out) {
  shared_t *sh = st->sh;
  memset(out, 0, sizeof *out);
  hd_store_backend_stats_t bs;
  uv_mutex_lock(&sh->mu);
  if (sh->db_closed) bs = sh->final_stats;
  else sh->be->stats(sh->db, &bs);
  out->ok = !sh->stopping && !sh->last_failed;
  out->queue_depth = sh->queue_len;
  out->in_flight = atomic_load(&sh->outstanding) - sh->queue_len; /* submissions count under mu */
  out->commits = sh->commits;
  out->failed_transactions = sh->failed;
  out->last_commit_us = sh->last_commit_us;
  out->commit_duration = sh->commit_duration;
  out->last_batch = sh->last_batch;
  out->max_batch = sh->max_batch;
  uv_mutex_unlock(&sh->mu);
  out->backend = sh->be->name;
  out->requests = atomic_load(&sh->answered);
  out->schema_version = bs.schema_version;
  out->statements = bs.statements;
  out->statements_off_thread = bs.statements_off_thread;
  return 0;
}

int hd_store_sql_thread(hd_store_t *st, uv_thread_t *out) {
  shared_t *sh = st->sh;
  uv_mutex_lock(&sh->mu);
  bool found = sh->db_closed ? sh->final_has_thread : sh->be->last_thread(sh->db, out);
  if (sh->db_closed && found) *out = sh->final_thread;
  uv_mutex_unlock(&sh->mu);
  return found ? 0 : HD_ENOTFOUND;
}

/* --- users ------------------------------------------------------------------------------------- */

int hd_store_user_create(hd_store_t *st, const char *name, const char *role, const char *password_hash,
                         const char *display_name, bool demo, hd_store_user_cb cb, void *arg) {
  if (!text_ok(name, 1, HD_STORE_NAME_MAX) || !role_ok(role) || !password_hash || !password_hash[0] ||
      strlen(password_hash) > HD_STORE_HASH_MAX || (display_name && !text_ok(display_name, 0, HD_STORE_NAME_MAX)))
    return HD_EINVAL;
  NEW_REQ(USER_CREATE, user);
  DUP_OR_FAIL(r->in.user.name, name);
  DUP_OR_FAIL(r->in.user.role, role);
  DUP_OR_FAIL(r->in.user.password_hash, password_hash);
  DUP_OR_FAIL(r->in.user.display_name, display_name ? display_name : "");
  r->in.user.demo = demo;
  return submit(st, r);
}

int hd_store_user_get_by_name(hd_store_t *st, const char *name, hd_store_user_cb cb, void *arg) {
  if (!text_ok(name, 1, HD_STORE_NAME_MAX)) return HD_EINVAL;
  NEW_REQ(USER_GET_BY_NAME, user);
  DUP_OR_FAIL(r->in.user.name, name);
  return submit(st, r);
}

int hd_store_user_get(hd_store_t *st, int64_t id, hd_store_user_cb cb, void *arg) {
  if (id <= 0) return HD_EINVAL;
  NEW_REQ(USER_GET, user);
  r->in.user.id = id;
  return submit(st, r);
}

int hd_store_users_list(hd_store_t *st, const char *role, hd_store_users_cb cb, void *arg) {
  if (role && !role_ok(role)) return HD_EINVAL;
  NEW_REQ(USERS_LIST, users);
  DUP_OR_FAIL(r->in.user.role, role);
  return submit(st, r);
}

int hd_store_user_update(hd_store_t *st, int64_t id, const char *name, const hd_store_user_change_t *change,
                         hd_store_user_cb cb, void *arg) {
  if ((id <= 0 && !text_ok(name, 1, HD_STORE_NAME_MAX)) || id < 0 || change->disabled < -1 || change->disabled > 1 ||
      (change->password_hash && (!change->password_hash[0] || strlen(change->password_hash) > HD_STORE_HASH_MAX)) ||
      (change->display_name && !text_ok(change->display_name, 1, HD_STORE_NAME_MAX)))
    return HD_EINVAL;
  NEW_REQ(USER_UPDATE, user);
  r->in.user.id = id;
  DUP_OR_FAIL(r->in.user.name, id > 0 ? NULL : name);
  DUP_OR_FAIL(r->in.user.password_hash, change->password_hash);
  DUP_OR_FAIL(r->in.user.display_name, change->display_name);
  r->in.user.disabled = change->disabled;
  return submit(st, r);
}

int hd_store_user_delete(hd_store_t *st, int64_t id, const char *name, hd_store_user_cb cb, void *arg) {
  if (id < 0 || (id == 0 && !text_ok(name, 1, HD_STORE_NAME_MAX))) return HD_EINVAL;
  NEW_REQ(USER_DELETE, user);
  r->in.user.id = id;
  DUP_OR_FAIL(r->in.user.name, id > 0 ? NULL : name);
  return submit(st, r);
}

int hd_store_users_search(hd_store_t *st, const char *query, const char *role, int limit, hd_store_users_cb cb,
                          void *arg) {
  if (!text_ok(query ? query : "", 0, HD_STORE_NAME_MAX) || (role && !role_ok(role)) || !limit_ok(limit))
    return HD_EINVAL;
  NEW_REQ(USERS_SEARCH, users);
  DUP_OR_FAIL(r->in.user.query, query ? query : "");
  DUP_OR_FAIL(r->in.user.role, role);
  r->in.user.limit = limit;
  return submit(st, r);
}

int hd_store_user_states(hd_store_t *st, hd_store_users_cb cb, void *arg) {
  NEW_REQ(USER_STATES, users);
  return submit(st, r);
}

int hd_store_users_get_many(hd_store_t *st, const int64_t *ids, size_t n, hd_store_users_cb cb, void *arg) {
  if (n < 1 || n > HD_STORE_LIST_MAX) return HD_EINVAL;
  char text[HD_STORE_LIST_MAX * 21 + 3], *p = text;
  *p++ = '[';
  for (size_t i = 0; i < n; i++) {
    if (ids[i] <= 0) return HD_EINVAL;
    p += sprintf(p, "%s%lld", i ? "," : "", (long long)ids[i]);
  }
  *p++ = ']';
  *p = '\0';
  NEW_REQ(USERS_GET_MANY, users);
  DUP_OR_FAIL(r->in.user.query, text);
  return submit(st, r);
}

int hd_store_users_version(hd_store_t *st, hd_store_count_cb cb, void *arg) {
  NEW_REQ(USERS_VERSION, count);
  return submit(st, r);
}

/* --- notifications ----------------------------------------------------------------------------- */

int hd_store_notification_create(hd_store_t *st, const hd_store_notification_new_t *n,
                                 hd_store_notification_cb cb, void *arg) {
  if (!n || !text_ok(n->type, 1, HD_STORE_TYPE_MAX) || !text_ok(n->title, 1, HD_STORE_TITLE_MAX) ||
      !text_ok(n->content, 0, HD_STORE_CONTENT_MAX) || (n->link && !text_ok(n->link, 0, HD_STORE_LINK_MAX)) ||
      n->sender_id < 0 || n->target_user_id < 0)
    return HD_EINVAL;
  NEW_REQ(NOTIFICATION_CREATE, notification);
  r->in.notification = *n;
  DUP_OR_FAIL(r->in.notification.type, n->type);
  DUP_OR_FAIL(r->in.notification.title, n->title);
  DUP_OR_FAIL(r->in.notification.content, n->content);
  DUP_OR_FAIL(r->in.notification.link, n->link);
  return submit(st, r);
}

int hd_store_notifications_list(hd_store_t *st, int64_t admin_id, bool unread_only, int limit, int64_t before_id,
                                hd_store_notifications_cb cb, void *arg) {
  if (admin_id <= 0 || !limit_ok(limit) || before_id < 0) return HD_EINVAL;
  NEW_REQ(NOTIFICATIONS_LIST, notifications);
  r->in.notifications.admin_id = admin_id;
  r->in.notifications.unread_only = unread_only;
  r->in.notifications.limit = limit;
  r->in.notifications.before_id = before_id;
  return submit(st, r);
}

int hd_store_notifications_unread_count(hd_store_t *st, int64_t admin_id, hd_store_count_cb cb, void *arg) {
  if (admin_id <= 0) return HD_EINVAL;
  NEW_REQ(NOTIFICATIONS_UNREAD, count);
  r->in.notifications.admin_id = admin_id;
  return submit(st, r);
}

int hd_store_notification_mark_read(hd_store_t *st, int64_t admin_id, int64_t notification_id,
                                    hd_store_notification_read_cb cb, void *arg) {
  if (admin_id <= 0 || notification_id <= 0) return HD_EINVAL;
  NEW_REQ(NOTIFICATION_MARK_READ, notification_read);
  r->in.notifications.admin_id = admin_id;
  r->in.notifications.notification_id = notification_id;
  return submit(st, r);
}

int hd_store_notifications_mark_all_read(hd_store_t *st, int64_t admin_id, hd_store_count_cb cb, void *arg) {
  if (admin_id <= 0) return HD_EINVAL;
  NEW_REQ(NOTIFICATIONS_MARK_ALL, count);
  r->in.notifications.admin_id = admin_id;
  return submit(st, r);
}

/* --- customer service -------------------------------------------------------------------------- */

int hd_store_session_create(hd_store_t *st, int64_t user_id, const char *content, const char *message_type,
                            int priority, hd_store_chat_post_cb cb, void *arg) {
  return hd_store_session_create_capped(st, user_id, content, message_type, priority, 0, cb, arg);
}

int hd_store_session_create_capped(hd_store_t *st, int64_t user_id, const char *content, const char *message_type,
                                   int priority, int max_open, hd_store_chat_post_cb cb, void *arg) {
  if (!message_type) message_type = "text";
  if (user_id <= 0 || !text_ok(content, 1, HD_STORE_CONTENT_MAX) || !msg_type_ok(message_type) || priority < 0 ||
      priority > HD_STORE_PRIORITY_MAX || max_open < 0)
    return HD_EINVAL;
  NEW_REQ(SESSION_CREATE, chat_post);
  r->in.chat.user_id = user_id;
  r->in.chat.priority = priority;
  r->in.chat.limit = max_open;
  DUP_OR_FAIL(r->in.chat.content, content);
  DUP_OR_FAIL(r->in.chat.message_type, message_type);
  return submit(st, r);
}

int hd_store_session_get(hd_store_t *st, int64_t session_id, hd_store_session_cb cb, void *arg) {
  if (session_id <= 0) return HD_EINVAL;
  NEW_REQ(SESSION_GET, session);
  r->in.chat.session_id = session_id;
  return submit(st, r);
}

int hd_store_sessions_list(hd_store_t *st, int64_t viewer_id, const char *viewer_role, const char *status, int limit,
                           hd_store_sessions_cb cb, void *arg) {
  if (viewer_id <= 0 || !role_ok(viewer_role) || (status && !one_of(status, "waiting", "active", "closed", NULL)) ||
      !limit_ok(limit))
    return HD_EINVAL;
  NEW_REQ(SESSIONS_LIST, sessions);
  r->in.chat.user_id = viewer_id;
  r->in.chat.limit = limit;
  DUP_OR_FAIL(r->in.chat.role, viewer_role);
  DUP_OR_FAIL(r->in.chat.status, status);
  return submit(st, r);
}

int hd_store_session_assign(hd_store_t *st, int64_t session_id, int64_t admin_id, hd_store_session_cb cb, void *arg) {
  if (session_id <= 0 || admin_id <= 0) return HD_EINVAL;
  NEW_REQ(SESSION_ASSIGN, session);
  r->in.chat.session_id = session_id;
  r->in.chat.admin_id = admin_id;
  return submit(st, r);
}

int hd_store_session_close(hd_store_t *st, int64_t session_id, hd_store_session_close_cb cb, void *arg) {
  if (session_id <= 0) return HD_EINVAL;
  NEW_REQ(SESSION_CLOSE, session_close);
  r->in.chat.session_id = session_id;
  return submit(st, r);
}

int hd_store_session_claim(hd_store_t *st, int64_t session_id, int64_t admin_id, hd_store_session_cb cb, void *arg) {
  if (session_id <= 0 || admin_id <= 0) return HD_EINVAL;
  NEW_REQ(SESSION_CLAIM, session);
  r->in.chat.session_id = session_id;
  r->in.chat.admin_id = admin_id;
  return submit(st, r);
}

int hd_store_sessions_waiting(hd_store_t *st, int limit, hd_store_sessions_cb cb, void *arg) {
  if (!limit_ok(limit)) return HD_EINVAL;
  NEW_REQ(SESSIONS_WAITING, sessions);
  r->in.chat.limit = limit;
  return submit(st, r);
}

int hd_store_admin_open_session_counts(hd_store_t *st, hd_store_admin_loads_cb cb, void *arg) {
  NEW_REQ(ADMIN_LOADS, admin_loads);
  return submit(st, r);
}

int hd_store_message_create(hd_store_t *st, int64_t session_id, int64_t sender_id, const char *sender_role,
                            const char *content, const char *message_type, hd_store_chat_post_cb cb, void *arg) {
  if (!message_type) message_type = "text";
  if (session_id <= 0 || sender_id <= 0 || !role_ok(sender_role) || !text_ok(content, 1, HD_STORE_CONTENT_MAX) ||
      !msg_type_ok(message_type))
    return HD_EINVAL;
  NEW_REQ(MESSAGE_CREATE, chat_post);
  r->in.chat.session_id = session_id;
  r->in.chat.sender_id = sender_id;
  DUP_OR_FAIL(r->in.chat.role, sender_role);
  DUP_OR_FAIL(r->in.chat.content, content);
  DUP_OR_FAIL(r->in.chat.message_type, message_type);
  return submit(st, r);
}

int hd_store_messages_list(hd_store_t *st, int64_t session_id, int64_t before_id, int limit,
                           hd_store_messages_cb cb, void *arg) {
  if (session_id <= 0 || before_id < 0 || !limit_ok(limit)) return HD_EINVAL;
  NEW_REQ(MESSAGES_LIST, messages);
  r->in.chat.session_id = session_id;
  r->in.chat.before_id = before_id;
  r->in.chat.limit = limit;
  return submit(st, r);
}

int hd_store_session_mark_read(hd_store_t *st, int64_t session_id, const char *reader_role,
                               hd_store_session_cb cb, void *arg) {
  if (session_id <= 0 || !role_ok(reader_role)) return HD_EINVAL;
  NEW_REQ(SESSION_MARK_READ, session);
  r->in.chat.session_id = session_id;
  DUP_OR_FAIL(r->in.chat.role, reader_role);
  return submit(st, r);
}

int hd_store_session_set_priority(hd_store_t *st, int64_t session_id, int priority, hd_store_session_cb cb, void *arg) {
  if (session_id <= 0 || priority < 1 || priority > HD_STORE_PRIORITY_MAX) return HD_EINVAL;
  NEW_REQ(SESSION_SET_PRIORITY, session);
  r->in.chat.session_id = session_id;
  r->in.chat.priority = priority;
  return submit(st, r);
}

/* --- inbox ------------------------------------------------------------------------------------- */

static bool key_ok(const char *s) { return s && s[0] && strlen(s) <= HD_STORE_SUB_MAX && utf8_chars(s) >= 0; }

int hd_store_inbox_put(hd_store_t *st, const char *user_sub, const char *message_id, const char *frame,
                       size_t frame_len, int64_t cap, hd_store_inbox_put_cb cb, void *arg) {
  if (!key_ok(user_sub) || !key_ok(message_id) || !frame || frame_len > HD_STORE_FRAME_MAX || cap < 1 ||
      cap > HD_STORE_INBOX_CAP_MAX)
    return HD_EINVAL;
  NEW_REQ(INBOX_PUT, inbox_put);
  DUP_OR_FAIL(r->in.inbox.user_sub, user_sub);
  DUP_OR_FAIL(r->in.inbox.message_id, message_id);
  if (!(r->in.inbox.frame = hd_store_arena_strndup(&r->arena, frame, frame_len))) {
    req_free(r);
    return HD_ENOMEM;
  }
  r->in.inbox.frame_len = frame_len;
  r->in.inbox.cap = cap;
  return submit(st, r);
}

int hd_store_inbox_take(hd_store_t *st, const char *user_sub, hd_store_inbox_cb cb, void *arg) {
  return hd_store_inbox_take_page(st, user_sub, HD_STORE_INBOX_CAP_MAX, cb, arg);
}

int hd_store_inbox_take_page(hd_store_t *st, const char *user_sub, int64_t limit, hd_store_inbox_cb cb, void *arg) {
  if (!key_ok(user_sub) || limit < 1 || limit > HD_STORE_INBOX_CAP_MAX) return HD_EINVAL;
  NEW_REQ(INBOX_TAKE, inbox);
  DUP_OR_FAIL(r->in.inbox.user_sub, user_sub);
  r->in.inbox.cap = limit;
  return submit(st, r);
}

int hd_store_inbox_put_many(hd_store_t *st, const hd_store_inbox_entry_t *items, size_t count, int64_t cap,
                            hd_store_inbox_puts_cb cb, void *arg) {
  if (!items || !count || count > HD_STORE_BATCH_MAX || cap < 1 || cap > HD_STORE_INBOX_CAP_MAX) return HD_EINVAL;
  for (size_t i = 0; i < count; i++)
    if (!key_ok(items[i].user_sub) || !key_ok(items[i].message_id) || !items[i].frame ||
        items[i].frame_len > HD_STORE_FRAME_MAX)
      return HD_EINVAL;
  NEW_REQ(INBOX_PUT_MANY, inbox_puts);
  hd_store_inbox_entry_t *copy = hd_store_arena_alloc(&r->arena, count * sizeof(*copy));
  for (size_t i = 0; copy && i < count; i++) {
    copy[i].frame_len = items[i].frame_len;
    if (!dup(r, &copy[i].user_sub, items[i].user_sub) || !dup(r, &copy[i].message_id, items[i].message_id) ||
        !(copy[i].frame = hd_store_arena_strndup(&r->arena, items[i].frame, items[i].frame_len)))
      copy = NULL;
  }
  if (!copy) {
    req_free(r);
    return HD_ENOMEM;
  }
  r->in.inbox_many.items = copy;
  r->in.inbox_many.count = count;
  r->in.inbox_many.cap = cap;
  return submit(st, r);
}

int hd_store_inbox_remove(hd_store_t *st, const char *user_sub, const char *message_id, hd_store_count_cb cb,
                          void *arg) {
  if (!key_ok(user_sub) || !key_ok(message_id)) return HD_EINVAL;
  NEW_REQ(INBOX_REMOVE, count);
  DUP_OR_FAIL(r->in.inbox.user_sub, user_sub);
  DUP_OR_FAIL(r->in.inbox.message_id, message_id);
  return submit(st, r);
}

/* --- topic history ------------------------------------------------------------------------------ */

int hd_store_topics_save(hd_store_t *st, const hd_store_topic_entry_t *items, size_t count, int64_t keep,
                         int64_t min_created_at, bool clean, hd_store_count_cb cb, void *arg) {
  if ((count && !items) || count > HD_STORE_BATCH_MAX || keep < 1 || keep > 1000000) return HD_EINVAL;
  for (size_t i = 0; i < count; i++)
    if (!key_ok(items[i].topic) || items[i].seq <= 0 || !items[i].entry || items[i].entry_len > HD_STORE_FRAME_MAX)
      return HD_EINVAL;
  NEW_REQ(TOPICS_SAVE, count);
  hd_store_topic_entry_t *copy = count ? hd_store_arena_alloc(&r->arena, count * sizeof(*copy)) : NULL;
  bool ok = !count || copy;
  for (size_t i = 0; ok && i < count; i++) {
    copy[i] = items[i];
    ok = dup(r, &copy[i].topic, items[i].topic) &&
         (copy[i].entry = hd_store_arena_strndup(&r->arena, items[i].entry, items[i].entry_len));
  }
  if (!ok) {
    req_free(r);
    return HD_ENOMEM;
  }
  r->in.topics.items = copy;
  r->in.topics.count = count;
  r->in.topics.keep = keep;
  r->in.topics.min_created_at = min_created_at;
  r->in.topics.clean = clean;
  return submit(st, r);
}

int hd_store_topics_load(hd_store_t *st, int64_t min_created_at, hd_store_topics_cb cb, void *arg) {
  NEW_REQ(TOPICS_LOAD, topics);
  r->in.topics.min_created_at = min_created_at;
  return submit(st, r);
}

/* --- retention -------------------------------------------------------------------------------- */

int hd_store_prune(hd_store_t *st, hd_store_prune_t what, int64_t before, int limit, hd_store_count_cb cb, void *arg) {
  if (what < HD_STORE_PRUNE_NOTIFICATIONS || what > HD_STORE_PRUNE_CHAT_SESSIONS || limit < 1 ||
      limit > HD_STORE_PRUNE_MAX)
    return HD_EINVAL;
  NEW_REQ(PRUNE, count);
  r->in.prune.what = what;
  r->in.prune.before = before;
  r->in.prune.limit = limit;
  return submit(st, r);
}
