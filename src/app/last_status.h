/* The last server status posted (POST /api/v4/system/status), shared by a node's shards, so a page
 * that loads later (the dashboard's Status tile) can show it. It is learned from the hub: every
 * system:status_change published on this node, or received from another node of the cluster, is
 * recorded. Kept in memory only (a node started later knows the statuses posted since). */
#ifndef HD_LAST_STATUS_H
#define HD_LAST_STATUS_H

typedef struct hd_last_status hd_last_status_t;
struct hd_hub_msg;

/* A new, empty record, or NULL when out of memory. */
hd_last_status_t *hd_last_status_new(void);
/* Replaces the record with a copy of json_text (the status_change payload). 0 or HD_ENOMEM. Thread-safe. */
int hd_last_status_set(hd_last_status_t *ls, const char *json_text);
/* A malloc'ed copy of the last payload (caller frees), or NULL when none was posted. Thread-safe. */
char *hd_last_status_get(hd_last_status_t *ls);
/* Records msg's first argument when msg is a system:status_change of namespace "/" (anything else is
 * ignored). Called by the hub's publish observer, under the publish lock. */
void hd_last_status_observe(hd_last_status_t *ls, const struct hd_hub_msg *msg);
/* Frees the record (NULL is fine). */
void hd_last_status_free(hd_last_status_t *ls);

#endif
