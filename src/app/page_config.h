/* GET /api/v4/config: what the pages need to know about the server before they draw (public). */
#ifndef HD_PAGE_CONFIG_H
#define HD_PAGE_CONFIG_H

typedef struct hd_app hd_app_t;

/* Registers GET /api/v4/config -> {display_utc_offset, time_offset}. 0 or HD_E*. */
int hd_page_config_register(hd_app_t *app);

#endif
