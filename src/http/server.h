/* server.h - the HTTP server (libmicrohttpd): the only code that includes <microhttpd.h>. */
#ifndef BERTH_SERVER_H
#define BERTH_SERVER_H

#include "../api/api.h"
#include "../base/err.h"

struct http_server;

#define HTTP_DEFAULT_MAX_CONNECTIONS 1024
#define HTTP_DEFAULT_IDLE_TIMEOUT_S 60

/* Connection limits (see server.c on hostile clients); 0 in a field means its default. */
struct http_opts {
	unsigned max_connections; /* open connections; past it newcomers wait for a slot */
	unsigned max_per_ip;      /* open connections per client address; 0: no such cap */
	/* seconds: a connection on which nothing moves for this long is closed, and so is one
	 * that has not completed a request's headers this long after it opened or after its
	 * previous response */
	unsigned idle_timeout_s;
};

/* Starts listening on host:port (IPv4 or IPv6 literal, or "localhost") and serving api.
 * *out is new. The api server is borrowed and must outlive the http server; opts is read
 * during the call (NULL: all defaults). */
enum berr_code http_start(struct api_server *api, const char *host, int port,
                          const struct http_opts *opts, struct http_server **out, struct berr *err);
/* Stops accepting connections, waits up to grace_ms for in-flight requests, then stops. */
void http_stop(struct http_server *h, int grace_ms);

#endif
