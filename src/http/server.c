/* server.c - libmicrohttpd glue: request bodies, api dispatch, responses, shutdown.
 *
 * Threading: MHD runs one thread per connection (handlers block on disk and SQLite, so this
 * is the simple correct start); a connection cap bounds the threads. Each request gets a
 * struct http_req on its first callback; the body accumulates in a capped buffer (ECR bodies
 * are JSON documents); the api layer runs on the final callback; the request is freed in the
 * completion callback. Blob downloads are file-descriptor responses, which MHD sends with
 * sendfile(2). Graceful stop: quiesce (no new connections), wait for in-flight requests to
 * drain, then stop the daemon. */
#include "../base/feat.h"

#include "server.h"
#include "../base/buf.h"
#include "../base/log.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_CONNECTIONS 1024
#define CONNECTION_TIMEOUT_S 300
/* Per-connection memory: headers plus the read buffer upload bodies arrive through (half of
 * it). MHD's 32 KiB default means a syscall pair and a hash call per 16 KiB of a push; but MHD
 * also zeroes the whole pool after every request, so every small request pays for its size:
 * at 256 KiB that was ~19 us (~12 %) of an ECR PutImage, at 128 KiB it is half, while a
 * single push loses ~10 % (64 KiB: ~20 %). */
#define CONNECTION_MEMORY (128 * 1024)

/* libmicrohttpd 0.9.75 keeps TCP_CORK set while it sendfile(2)s a response body (to send
 * full segments); on Linux that halves the rate of a blob GET (a sendfile-only server on
 * loopback: 5.4 GB/s without cork, 2.1 GB/s with it, 8 connections). This definition
 * interposes the library's calls (the executable's symbol wins in ELF resolution) and
 * reports success for "cork on" without doing it; everything else goes to the kernel. The
 * sockets already have TCP_NODELAY, so headers and small bodies still go out at once (MHD
 * sends those in one writev anyway). */
int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (level == IPPROTO_TCP && name == TCP_CORK && val && len == sizeof(int) &&
	    *(const int *)val != 0)
		return 0;
	return (int)syscall(SYS_setsockopt, fd, level, name, val, len);
}

struct http_server {
	struct MHD_Daemon *d;
	struct api_server *api;
	atomic_int inflight;
	MHD_socket listen_fd;
};

struct http_req {
	struct MHD_Connection *conn;
	char **joined; /* header values joined for repeated headers, freed with the request */
	size_t njoined;
	struct buf body;
	struct api_stream *stream; /* streamed body consumer, until finish/abort */
	bool too_large;
	bool responded; /* a response was queued at the headers stage */
	size_t limit;
	char request_id[37];
};

struct join_ctx {
	const char *name;
	struct buf b;
	int count;
};

static enum MHD_Result join_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
	(void)kind;
	struct join_ctx *j = cls;
	if (strcasecmp(key, j->name) == 0 && value) {
		if (j->count++)
			buf_append(&j->b, ",", 1, NULL);
		buf_puts(&j->b, value, NULL);
	}
	return MHD_YES;
}

/* The value of a header; a header sent several times yields its values joined by ',' (the
 * form HTTP defines as equivalent, and the one SigV4 signs). */
static const char *lookup_header(void *ctx, const char *name)
{
	struct http_req *hr = ctx;
	const char *first = MHD_lookup_connection_value(hr->conn, MHD_HEADER_KIND, name);
	if (!first)
		return NULL;
	struct join_ctx j = {name, {0}, 0};
	buf_init(&j.b, 64 * 1024);
	MHD_get_connection_values(hr->conn, MHD_HEADER_KIND, join_value, &j);
	if (j.count <= 1) {
		buf_free(&j.b);
		return first;
	}
	hr->joined = xrealloc(hr->joined, (hr->njoined + 1) * sizeof(char *));
	hr->joined[hr->njoined++] = buf_steal(&j.b, NULL);
	return hr->joined[hr->njoined - 1];
}

static const char *lookup_arg(void *ctx, const char *name)
{
	struct http_req *hr = ctx;
	return MHD_lookup_connection_value(hr->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, struct api_resp *r)
{
	struct MHD_Response *mr;
	if (r->fd >= 0) {
		/* MHD takes the descriptor and closes it when the response is destroyed. */
		mr = MHD_create_response_from_fd_at_offset64((uint64_t)r->length, r->fd,
		                                             (uint64_t)r->offset);
		if (mr)
			r->fd = -1;
	} else {
		mr = MHD_create_response_from_buffer(r->body_len, r->body ? r->body : (char *)"",
		                                     r->body ? MHD_RESPMEM_MUST_FREE
		                                             : MHD_RESPMEM_PERSISTENT);
		if (mr)
			r->body = NULL;
	}
	if (!mr)
		return MHD_NO;
	for (size_t i = 0; i < r->nheaders; i++)
		MHD_add_response_header(mr, r->headers[i].name, r->headers[i].value);
	enum MHD_Result ok = MHD_queue_response(conn, (unsigned)r->status, mr);
	MHD_destroy_response(mr);
	return ok;
}

static void fill_req(struct api_req *req, const char *url, const char *method, struct http_req *hr)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->path = url;
	req->header = lookup_header;
	req->arg = lookup_arg;
	req->ctx = hr;
	memcpy(req->request_id, hr->request_id, sizeof(req->request_id));
}

static enum MHD_Result finish_resp(struct MHD_Connection *conn, const struct api_req *req,
                                   struct api_resp *resp)
{
	log_debug("%s %s %s -> %d", req->request_id, req->method, req->path, resp->status);
	enum MHD_Result ok = send_resp(conn, resp);
	api_resp_free(resp);
	return ok;
}

/* Headers have arrived: let the api choose how to consume the body. */
static enum MHD_Result on_headers(struct http_server *h, struct MHD_Connection *conn,
                                  const char *url, const char *method, struct http_req *hr)
{
	struct api_req req;
	fill_req(&req, url, method, hr);
	struct api_resp resp;
	api_resp_init(&resp);
	size_t limit = API_ECR_MAX_BODY;
	enum api_plan plan = api_begin(h->api, &req, &limit, &hr->stream, &resp);
	if (plan == API_PLAN_RESPOND) {
		hr->responded = true;
		return finish_resp(conn, &req, &resp);
	}
	api_resp_free(&resp);
	hr->limit = limit;
	buf_init(&hr->body, limit);
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct http_server *h = cls;
	struct http_req *hr = *con_cls;
	if (!hr) {
		hr = xcalloc(1, sizeof(*hr));
		hr->conn = conn;
		uuid_v4(hr->request_id);
		atomic_fetch_add(&h->inflight, 1);
		*con_cls = hr;
		return on_headers(h, conn, url, method, hr);
	}
	if (hr->responded) {
		*upload_data_size = 0; /* response already queued: drop any body */
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (hr->stream) {
			/* The stream records its own failure and reports it from finish(). */
			struct berr e;
			hr->stream->write(hr->stream, upload_data, *upload_data_size, &e);
		} else if (!hr->too_large &&
		           buf_append(&hr->body, upload_data, *upload_data_size, NULL) != BERR_OK) {
			hr->too_large = true;
			buf_free(&hr->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	struct api_req req;
	fill_req(&req, url, method, hr);
	req.body = hr->body.p;
	req.body_len = hr->body.len;
	struct api_resp resp;
	api_resp_init(&resp);
	if (hr->stream) {
		struct api_stream *st = hr->stream;
		hr->stream = NULL;
		st->finish(st, &req, &resp);
	} else if (hr->too_large && !api_is_oci_path(url)) {
		struct berr e;
		err_set(&e, BERR_TOO_LARGE, "request body exceeds %zu bytes", hr->limit);
		api_ecr_error(&resp, &e, NULL);
		resp.status = 413;
	} else {
		req.body_too_large = hr->too_large; /* the /v2 door names its own error */
		api_handle(h->api, &req, &resp);
	}
	return finish_resp(conn, &req, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)conn;
	(void)toe;
	struct http_server *h = cls;
	struct http_req *hr = *con_cls;
	if (!hr)
		return;
	atomic_fetch_sub(&h->inflight, 1);
	if (hr->stream)
		hr->stream->abort(hr->stream); /* connection ended before the body did */
	buf_free(&hr->body);
	for (size_t i = 0; i < hr->njoined; i++)
		free(hr->joined[i]);
	free(hr->joined);
	free(hr);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	log_debug("mhd: %s", line);
}

/* The listening socket is ours, not MHD's, so that a busy address is found before anything
 * else starts, with errno to say why. SO_REUSEADDR (what MHD would set) lets a restarted
 * server bind at once while connections of the previous one linger in TIME_WAIT; SO_REUSEPORT
 * is not set: it let a second server bind the same port and the kernel split connections
 * between two data directories. */
static enum berr_code listen_error(const char *what, const char *host, int port, int e,
                                   struct berr *err)
{
	return err_sys(err, BERR_IO, e, "cannot %s %s:%d: %s", what, host, port,
	               e == EADDRINUSE ? "address already in use" : strerror(e));
}

enum berr_code http_bind(const char *host, int port, struct http_listener *out, struct berr *err)
{
	struct addrinfo hints = {0}, *ai = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	int gai = getaddrinfo(host, portstr, &hints, &ai);
	if (gai != 0)
		return err_set(err, BERR_INVALID, "cannot resolve listen address %s: %s", host,
		               gai_strerror(gai));
	enum berr_code rc = BERR_OK;
	int one = 1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = listen_error("create a socket for", host, port, errno, err);
	} else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	           (ai->ai_family == AF_INET6 &&
	            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		rc = listen_error("set socket options for", host, port, errno, err);
	} else if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		rc = listen_error("listen on", host, port, errno, err);
	}
	if (rc != BERR_OK && fd >= 0)
		close(fd);
	if (rc == BERR_OK) {
		out->fd = fd;
		out->ipv6 = ai->ai_family == AF_INET6;
		snprintf(out->host, sizeof(out->host), "%s", host);
		out->port = port;
	}
	freeaddrinfo(ai);
	return rc;
}

void http_unbind(struct http_listener *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

enum berr_code http_start(struct api_server *api, struct http_listener *l, struct http_server **out,
                          struct berr *err)
{
	/* listen(2) checks again: two servers that bound the port at the same moment (both with
	 * SO_REUSEADDR, neither listening yet) are told apart here. */
	if (listen(l->fd, SOMAXCONN) < 0) {
		enum berr_code rc = listen_error("listen on", l->host, l->port, errno, err);
		http_unbind(l);
		return rc;
	}
	struct http_server *h = xcalloc(1, sizeof(*h));
	h->api = api;
	atomic_init(&h->inflight, 0);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                 MHD_USE_ERROR_LOG | MHD_USE_ITC;
	if (l->ipv6)
		flags |= MHD_USE_IPv6;
	/* MHD owns the socket from here (it closes it on stop, or hands it back on quiesce). */
	h->d = MHD_start_daemon(flags, (uint16_t)l->port, NULL, NULL, on_request, h,
	                        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l->fd,
	                        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
	                        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
	/* Whether a failed MHD_start_daemon closed the socket is not specified: it is left
	 * alone (closing it twice could close another thread's file; the process exits). */
	l->fd = -1;
	if (!h->d) {
		free(h);
		return err_set(err, BERR_IO, "cannot start the HTTP server on %s:%d", l->host,
		               l->port);
	}
	*out = h;
	return BERR_OK;
}

void http_stop(struct http_server *h, int grace_ms)
{
	if (!h)
		return;
	MHD_socket fd = MHD_quiesce_daemon(h->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	int64_t deadline = clock_mono_ms() + grace_ms;
	while (atomic_load(&h->inflight) > 0 && clock_mono_ms() < deadline)
		usleep(10000);
	if (atomic_load(&h->inflight) > 0)
		log_warn("stopping with %d requests still in flight", atomic_load(&h->inflight));
	MHD_stop_daemon(h->d);
	free(h);
}
