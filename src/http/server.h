/* server.h - the HTTP server (libmicrohttpd): the only code that includes <microhttpd.h>. */
#ifndef BERTH_SERVER_H
#define BERTH_SERVER_H

#include "../api/api.h"
#include "../base/err.h"

struct http_server;

/* Starts listening on host:port (IPv4 or IPv6 literal, or "localhost") and serving api.
 * *out is new. The api server is borrowed and must outlive the http server. */
enum berr_code http_start(struct api_server *api, const char *host, int port,
                          struct http_server **out, struct berr *err);
/* Stops accepting connections, waits up to grace_ms for in-flight requests, then stops. */
void http_stop(struct http_server *h, int grace_ms);

#endif
