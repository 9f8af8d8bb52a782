/* Who may subscribe or publish to which topic over the JSON protocol: admins everywhere, `user`
 * tokens where one of the configured patterns allows (--topic-subscribe-user, --topic-publish-user:
 * comma-separated; `{sub}` stands for the token's user id; a trailing `*` matches any rest).
 * The app installs it as the JSON protocol's policy. Read-only after creation: any thread. */
#ifndef HD_TOPIC_POLICY_H
#define HD_TOPIC_POLICY_H

#include <stdbool.h>

#include "auth/jwt.h"

typedef struct hd_topic_policy hd_topic_policy_t;

/* Parses both pattern lists (NULL = none); NULL when out of memory. */
hd_topic_policy_t *hd_topic_policy_new(const char *subscribe_patterns, const char *publish_patterns);
void hd_topic_policy_free(hd_topic_policy_t *p);
/* True when claims may subscribe to topic; policy is a hd_topic_policy_t (callback shape). */
bool hd_topic_policy_may_subscribe(void *policy, const hd_claims_t *claims, const char *topic);
/* True when claims may publish to topic; policy is a hd_topic_policy_t (callback shape). */
bool hd_topic_policy_may_publish(void *policy, const hd_claims_t *claims, const char *topic);

#endif
