/* Telling the service manager how the server is doing (systemd's sd_notify protocol: READY=1 once
 * every listener is up, STOPPING=1 when a graceful stop begins), for `Type=notify` units
 * (packaging/herald.service). Without NOTIFY_SOCKET in the environment, or in a build without
 * libsystemd (HERALD_HAVE_SYSTEMD unset), these do nothing. */
#ifndef HD_SERVICE_H
#define HD_SERVICE_H

/* Says the server is ready: its listeners accept connections on every shard. */
void hd_service_ready(void);
/* Says a graceful stop has begun. */
void hd_service_stopping(void);

#endif
