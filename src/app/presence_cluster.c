/* Presence across the nodes of a cluster (see presence.h): this node's entry as JSON for Redis, the
 * other nodes' entries read back into a view (each replaced whole, never patched, so a lost write
 * or a Redis restart leaves nothing stale behind), and the cluster-wide listing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/presence_internal.h"
#include "net/server.h"

/* --- this node's entry ---------------------------------------------------------------------------- */

/* {key: sockets} of at most max identities of map. */
static json_t *idents_json(const hd_map_t *map, size_t max) {
  json_t *o = json_object();
  size_t n = 0;
  for (size_t i = 0; o && i < map->cap && n < max; i++) {
    const hd_presence_ident_t *a = map->slots[i].value;
    if (map->slots[i].hash) json_object_set_new(o, a->key, json_integer(a->sockets)), n++;
  }
  return o;
}

char *hd_presence_shared_describe(hd_presence_shared_t *sh, uint32_t connections) {
  uv_mutex_lock(&sh->mu);
  json_t *e = json_pack("{s:I, s:{s:I, s:I}, s:o, s:I, s:o, s:I}", "connections", (json_int_t)connections, "sockets",
                        "admin", (json_int_t)sh->sockets_admin, "user", (json_int_t)sh->sockets_user, "admins",
                        idents_json(&sh->admins, HD_PRESENCE_LIST_ADMINS), "admins_total",
                        (json_int_t)sh->admins.count, "users", idents_json(&sh->users, HD_PRESENCE_LIST_USERS),
                        "users_total", (json_int_t)sh->users.count);
  uv_mutex_unlock(&sh->mu);
  char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
  json_decref(e);
  return text;
}

/* --- the other nodes -------------------------------------------------------------------------------- */

void hd_presence_remote_free(hd_presence_remote_t *r) {
  if (!r) return;
  for (size_t i = 0; i < r->count; i++) free(r->nodes[i].admins), free(r->nodes[i].users);
  free(r->nodes);
  free(r->merged);
  hd_map_free(&r->admins);
  free(r);
}

const hd_presence_remote_t *hd_presence_remote_fresh(const hd_presence_shared_t *sh) {
  return sh->remote && (uv_hrtime() - sh->remote_ns) / 1000000 < HD_PRESENCE_STALE_MS ? sh->remote : NULL;
}

static uint64_t count_of(json_t *v) {
  return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* The {key: sockets} object o as at most max identities (malloc'd, *n of them). */
static hd_presence_ident_t *idents_of(json_t *o, size_t max, size_t *n) {
  *n = 0;
  size_t size = json_is_object(o) ? json_object_size(o) : 0;
  if (size > max) size = max;
  hd_presence_ident_t *out = size ? calloc(size, sizeof(*out)) : NULL;
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    if (!out || *n == size) break;
    uint64_t sockets = count_of(v);
    size_t len = strlen(key);
    if (!sockets || !len || len >= HD_PRESENCE_KEY_MAX) continue;
    hd_presence_ident_t *a = &out[(*n)++];
    memcpy(a->key, key, len + 1);
    char *end;
    long long id = strtoll(key, &end, 10);
    a->id = !*end && id > 0 ? id : 0;
    a->sockets = sockets > UINT32_MAX ? UINT32_MAX : (uint32_t)sockets;
  }
  return out;
}

/* Parses one node's entry into d; false when it is not an entry. */
static bool parse_node(const hd_presence_entry_t *in, hd_presence_node_t *d) {
  json_t *e = json_loadb(in->entry, in->len, 0, NULL);
  if (!json_is_object(e)) return json_decref(e), false;
  memcpy(d->tag, in->tag, 3);
  d->age_ms = in->age_ms;
  d->connections = count_of(json_object_get(e, "connections"));
  json_t *sockets = json_object_get(e, "sockets");
  d->sockets_admin = count_of(json_object_get(sockets, "admin"));
  d->sockets_user = count_of(json_object_get(sockets, "user"));
  d->admins = idents_of(json_object_get(e, "admins"), HD_PRESENCE_LIST_ADMINS, &d->admin_count);
  d->users = idents_of(json_object_get(e, "users"), HD_PRESENCE_LIST_USERS, &d->user_count);
  d->users_total = count_of(json_object_get(e, "users_total"));
  if (d->users_total < d->user_count) d->users_total = d->user_count;
  d->users_truncated = d->users_total > d->user_count;
  json_decref(e);
  return true;
}

/* Builds r->admins and r->merged: each admin once, sockets summed over the nodes. */
static bool merge_admins(hd_presence_remote_t *r) {
  size_t total = 0;
  for (size_t i = 0; i < r->count; i++) total += r->nodes[i].admin_count;
  if (!total) return true;
  if (!(r->merged = calloc(total, sizeof(*r->merged)))) return false;
  size_t n = 0;
  for (size_t i = 0; i < r->count; i++)
    for (size_t j = 0; j < r->nodes[i].admin_count; j++) {
      const hd_presence_ident_t *a = &r->nodes[i].admins[j];
      hd_presence_ident_t *m = hd_map_get(&r->admins, a->key, strlen(a->key));
      if (m) {
        m->sockets += a->sockets;
        continue;
      }
      m = &r->merged[n++];
      *m = *a;
      if (hd_map_put(&r->admins, m->key, strlen(m->key), m)) return false;
    }
  return true;
}

void hd_presence_shared_take(hd_presence_shared_t *sh, const hd_presence_entry_t *entries, size_t count) {
  hd_presence_remote_t *r = calloc(1, sizeof(*r));
  if (r && count && !(r->nodes = calloc(count, sizeof(*r->nodes)))) count = 0;
  for (size_t i = 0; r && r->nodes && i < count; i++)
    if (memcmp(entries[i].tag, sh->self_tag, 3) && parse_node(&entries[i], &r->nodes[r->count])) r->count++;
  if (r && !merge_admins(r)) hd_presence_remote_free(r), r = NULL;
  if (!r) return; /* out of memory: the last view stays until it is stale */
  uv_mutex_lock(&sh->mu);
  hd_presence_remote_t *old = sh->remote;
  sh->remote = r;
  sh->remote_ns = uv_hrtime();
  uv_mutex_unlock(&sh->mu);
  hd_presence_remote_free(old);
}

/* --- the listing ------------------------------------------------------------------------------------- */

/* Adds sockets of identity a on node tag into list (an object keyed by identity). */
static void list_add(json_t *list, const hd_presence_ident_t *a, const char *tag) {
  json_t *o = json_object_get(list, a->key);
  if (!o) {
    o = json_pack("{s:o, s:s, s:I, s:[]}", "id", a->id ? json_integer(a->id) : json_null(), "sub", a->key, "sockets",
                  (json_int_t)0, "nodes");
    if (!o || json_object_set_new(list, a->key, o)) return;
  }
  json_object_set_new(o, "sockets", json_integer(json_integer_value(json_object_get(o, "sockets")) + a->sockets));
  json_array_append_new(json_object_get(o, "nodes"), json_string(tag));
}

static void list_map(json_t *list, const hd_map_t *map, const char *tag, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < map->cap && n < max; i++)
    if (map->slots[i].hash) list_add(list, map->slots[i].value, tag), n++;
}

static json_t *values_of(json_t *list) {
  json_t *out = json_array(), *v;
  const char *key;
  json_object_foreach(list, key, v) json_array_append(out, v);
  json_decref(list);
  return out;
}

static json_t *url_of(json_t *urls, const char *tag) {
  size_t i;
  json_t *v;
  json_array_foreach(urls, i, v) {
    const char *t = json_string_value(json_object_get(v, "tag"));
    json_t *url = json_object_get(v, "url");
    if (t && !strcmp(t, tag) && json_is_string(url)) return json_incref(url);
  }
  return json_null();
}

static json_t *node_json(const char *tag, bool self, json_t *url, uint64_t age_ms, uint64_t connections,
                         uint64_t sockets_admin, uint64_t sockets_user, size_t admins, uint64_t users) {
  return json_pack("{s:s, s:b, s:o, s:I, s:I, s:{s:I, s:I}, s:I, s:I}", "tag", tag, "self", self, "url", url,
                   "age_ms", (json_int_t)age_ms, "connections", (json_int_t)connections, "sockets", "admin",
                   (json_int_t)sockets_admin, "user", (json_int_t)sockets_user, "admins", (json_int_t)admins,
                   "users", (json_int_t)users);
}

json_t *hd_presence_json(const hd_app_t *app, json_t *urls) {
  hd_presence_shared_t *sh = app->shared->presence;
  bool clustered = sh->changed != NULL;
  const char *self = clustered ? sh->self_tag : app->shared->node_tag;
  json_t *nodes = json_array(), *admins = json_object(), *users = json_object();
  bool truncated = false;
  uint64_t users_total;
  uv_mutex_lock(&sh->mu);
  json_array_append_new(nodes, node_json(self, true, url_of(urls, self), 0, hd_server_node_connections(app->srv),
                                         sh->sockets_admin, sh->sockets_user, sh->admins.count, sh->users.count));
  list_map(admins, &sh->admins, self, HD_PRESENCE_LIST_ADMINS);
  list_map(users, &sh->users, self, HD_PRESENCE_LIST_USERS);
  truncated = sh->users.count > HD_PRESENCE_LIST_USERS;
  users_total = sh->users.count;
  const hd_presence_remote_t *r = hd_presence_remote_fresh(sh);
  uint64_t since = r ? (uv_hrtime() - sh->remote_ns) / 1000000 : 0; /* the read's own age */
  for (size_t i = 0; r && i < r->count; i++) {
    const hd_presence_node_t *d = &r->nodes[i];
    json_array_append_new(nodes, node_json(d->tag, false, url_of(urls, d->tag), d->age_ms + since, d->connections,
                                           d->sockets_admin, d->sockets_user, d->admin_count, d->users_total));
    for (size_t j = 0; j < d->admin_count; j++) list_add(admins, &d->admins[j], d->tag);
    for (size_t j = 0; j < d->user_count; j++) list_add(users, &d->users[j], d->tag);
    truncated |= d->users_truncated;
    users_total += d->users_total;
  }
  uv_mutex_unlock(&sh->mu);
  /* a user on two nodes is one user: exact while every node listed all of its users */
  if (!truncated) users_total = json_object_size(users);
  size_t admins_online = json_object_size(admins);
  json_t *admin_list = values_of(admins), *user_list = values_of(users);
  return json_pack("{s:s, s:s, s:o, s:o, s:I, s:o, s:I, s:b}", "scope", clustered ? "cluster" : "node", "self", self,
                   "nodes", nodes, "admins", admin_list, "admins_online", (json_int_t)admins_online, "users", user_list,
                   "users_online", (json_int_t)users_total, "users_truncated", truncated);
}
