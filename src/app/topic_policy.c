/* Topic permissions (see topic_policy.h): patterns parsed once into prefix / {sub} / suffix rules. */
#include "app/topic_policy.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

#define PATTERN_MAX 255 /* longer patterns are ignored */

typedef struct {
  char *pre, *post;  /* text before and after {sub} (post without the trailing *) */
  bool has_sub;
  bool prefix;       /* trailing *: the topic may continue */
} rule_t;

typedef struct {
  rule_t *rules;
  size_t count;
} rules_t;

struct hd_topic_policy {
  rules_t subscribe, publish;
};

static void rules_free(rules_t *r) {
  for (size_t i = 0; i < r->count; i++) {
    free(r->rules[i].pre);
    free(r->rules[i].post);
  }
  free(r->rules);
}

/* Parses comma-separated patterns into r. 0, or -1 when out of memory. */
static int rules_parse(rules_t *r, const char *patterns) {
  size_t cap = 1;
  for (const char *p = patterns; p && *p; p++) cap += *p == ',';
  if (!(r->rules = calloc(cap, sizeof(*r->rules)))) return -1;
  for (const char *p = patterns; p && *p;) {
    size_t n = strcspn(p, ",");
    hd_slice_t item = hd_slice_trim((hd_slice_t){p, n});
    p += n + (p[n] == ',');
    if (!item.len || item.len > PATTERN_MAX) continue;
    rule_t *rule = &r->rules[r->count];
    char pat[PATTERN_MAX + 1];
    rule->prefix = item.ptr[item.len - 1] == '*';
    memcpy(pat, item.ptr, item.len - rule->prefix);
    pat[item.len - rule->prefix] = '\0';
    char *at = strstr(pat, "{sub}");
    rule->has_sub = at != NULL;
    rule->pre = strndup(pat, at ? (size_t)(at - pat) : strlen(pat));
    rule->post = strdup(at ? at + 5 : "");
    if (!rule->pre || !rule->post) {
      free(rule->pre);
      free(rule->post);
      return -1;
    }
    r->count++;
  }
  return 0;
}

static bool starts_with(const char **s, const char *prefix) {
  size_t n = strlen(prefix);
  if (strncmp(*s, prefix, n)) return false;
  *s += n;
  return true;
}

static bool rule_match(const rule_t *rule, const char *sub, const char *topic) {
  if (!starts_with(&topic, rule->pre)) return false;
  if (rule->has_sub && !starts_with(&topic, sub)) return false;
  return rule->prefix ? starts_with(&topic, rule->post) : !strcmp(topic, rule->post);
}

static bool allowed(const rules_t *r, const hd_claims_t *c, const char *topic) {
  if (!strcmp(c->role, "admin")) return true;
  for (size_t i = 0; i < r->count; i++)
    if (rule_match(&r->rules[i], c->sub, topic)) return true;
  return false;
}

hd_topic_policy_t *hd_topic_policy_new(const char *subscribe_patterns, const char *publish_patterns) {
  hd_topic_policy_t *p = calloc(1, sizeof(*p));
  if (p && !rules_parse(&p->subscribe, subscribe_patterns) && !rules_parse(&p->publish, publish_patterns)) return p;
  hd_topic_policy_free(p);
  return NULL;
}

void hd_topic_policy_free(hd_topic_policy_t *p) {
  if (!p) return;
  rules_free(&p->subscribe);
  rules_free(&p->publish);
  free(p);
}

bool hd_topic_policy_may_subscribe(void *policy, const hd_claims_t *claims, const char *topic) {
  return allowed(&((hd_topic_policy_t *)policy)->subscribe, claims, topic);
}

bool hd_topic_policy_may_publish(void *policy, const hd_claims_t *claims, const char *topic) {
  return allowed(&((hd_topic_policy_t *)policy)->publish, claims, topic);
}
