/* Who may do what on the JSON protocol: tokens verified with the node's JWT configuration, and the
 * topic rules (--topic-subscribe-user, --topic-publish-user: comma-separated patterns, `{sub}` = the
 * token's user id, a trailing `*` matches any suffix; admins may use every topic). Installed into
 * the JSON protocol as its hd_jp_policy_t. */
#ifndef HD_TOPIC_POLICY_H
#define HD_TOPIC_POLICY_H

#include <stdbool.h>

#include "auth/jwt.h"
#include "proto/json_proto.h"

typedef struct {
  const hd_jwt_config_t *jwt; /* borrowed */
  char *subscribe_user;       /* owned copies of the pattern lists */
  char *publish_user;
} hd_topic_policy_t;

/* Prepares p from the pattern lists (copied) and jwt (borrowed). 0 or HD_ENOMEM. */
int hd_topic_policy_init(hd_topic_policy_t *p, const hd_jwt_config_t *jwt, const char *subscribe_user,
                         const char *publish_user);
void hd_topic_policy_free(hd_topic_policy_t *p);
/* True when topic matches one of the comma-separated patterns for user id sub. */
bool hd_topic_matches(const char *patterns, const char *sub, const char *topic);
/* The JSON protocol's policy backed by p. */
hd_jp_policy_t hd_topic_policy(hd_topic_policy_t *p);

#endif
