/* server.h - the HTTP server (libmicrohttpd): the only code that includes <microhttpd.h>. */
#ifndef BERTH_SERVER_H
#define BERTH_SERVER_H

#include "../api/api.h"
#include "../base/err.h"

#include <stdbool.h>

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

/* A socket bound to the listening address, not yet accepting connections. */
struct http_listener {
	int fd; /* -1 once handed to the server or closed */
	bool ipv6;
	char host[256];
	int port;
};

/* Binds host:port (IPv4 or IPv6 literal, or "localhost") without accepting connections yet,
 * so that a busy address is refused before the data directory is opened: BERR_IO with
 * "cannot listen on HOST:PORT: address already in use" when another process listens there
 * (SO_REUSEADDR only, never SO_REUSEPORT: the port has one owner). *out is filled; pass it to
 * http_start or http_unbind. */
enum berr_code http_bind(const char *host, int port, struct http_listener *out, struct berr *err);
/* Closes a listener that was not handed to http_start. Idempotent. */
void http_unbind(struct http_listener *l);
/* Starts accepting connections on l and serving api; takes l's socket (also on failure,
 * which includes "address already in use" from listen(2) when another server bound the same
 * port at the same moment). opts is read during the call (NULL: all defaults). *out is new.
 * The api server is borrowed and must outlive the http server. */
enum berr_code http_start(struct api_server *api, struct http_listener *l,
                          const struct http_opts *opts, struct http_server **out, struct berr *err);
/* Stops accepting connections, waits up to grace_ms for in-flight requests, then stops. */
void http_stop(struct http_server *h, int grace_ms);

#endif
