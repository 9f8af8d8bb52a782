/* Token verification and topic rules for the JSON protocol (see topic_policy.h). */
#include "app/topic_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"

int hd_topic_policy_init(hd_topic_policy_t *p, const hd_jwt_config_t *jwt, const char *subscribe_user,
                         const char *publish_user) {
  p->jwt = jwt;
  p->subscribe_user = strdup(subscribe_user ? subscribe_user : "");
  p->publish_user = strdup(publish_user ? publish_user : "");
  if (p->subscribe_user && p->publish_user) return 0;
  hd_topic_policy_free(p);
  return HD_ENOMEM;
}

void hd_topic_policy_free(hd_topic_policy_t *p) {
  free(p->subscribe_user);
  free(p->publish_user);
  p->subscribe_user = p->publish_user = NULL;
}

bool hd_topic_matches(const char *patterns, const char *sub, const char *topic) {
  for (const char *p = patterns; p && *p;) {
    size_t n = strcspn(p, ",");
    char pat[256], expanded[512];
    hd_slice_t item = hd_slice_trim((hd_slice_t){p, n});
    p += n + (p[n] == ',');
    if (!item.len || item.len >= sizeof pat) continue;
    memcpy(pat, item.ptr, item.len);
    pat[item.len] = '\0';
    char *at = strstr(pat, "{sub}");
    if (at) snprintf(expanded, sizeof expanded, "%.*s%s%s", (int)(at - pat), pat, sub, at + 5);
    else snprintf(expanded, sizeof expanded, "%s", pat);
    size_t len = strlen(expanded);
    if (len && expanded[len - 1] == '*') {
      if (!strncmp(topic, expanded, len - 1)) return true;
    } else if (!strcmp(topic, expanded)) {
      return true;
    }
  }
  return false;
}

static bool is_admin(const hd_claims_t *c) { return !strcmp(c->role, "admin"); }

static int authenticate(void *arg, const char *token, hd_claims_t *out, const char **why) {
  return hd_jwt_verify(((hd_topic_policy_t *)arg)->jwt, token, out, why);
}

static bool may_subscribe(void *arg, const hd_claims_t *c, const char *topic) {
  return is_admin(c) || hd_topic_matches(((hd_topic_policy_t *)arg)->subscribe_user, c->sub, topic);
}

static bool may_publish(void *arg, const hd_claims_t *c, const char *topic) {
  return is_admin(c) || hd_topic_matches(((hd_topic_policy_t *)arg)->publish_user, c->sub, topic);
}

hd_jp_policy_t hd_topic_policy(hd_topic_policy_t *p) {
  return (hd_jp_policy_t){authenticate, may_subscribe, may_publish, p};
}
