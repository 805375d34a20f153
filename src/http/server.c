/* server.c - libmicrohttpd glue: request bodies, api dispatch, responses, shutdown, and the
 * defences against hostile clients.
 *
 * Threading: MHD runs one thread per connection (handlers block on disk and SQLite, so this
 * is the simple correct start); a connection cap bounds the threads. Each request gets a
 * struct http_req on its first callback; the body accumulates in a capped buffer (ECR bodies
 * are JSON documents); the api layer runs on the final callback; the request is freed in the
 * completion callback. Blob downloads are file-descriptor responses, which MHD sends with
 * sendfile(2). Graceful stop: quiesce (no new connections), wait for in-flight requests to
 * drain, then stop the daemon.
 *
 * Hostile clients (issue 14). Every connection holds a thread and a slot of the cap, so a
 * client that opens connections and sends nothing, or trickles its headers, could take every
 * slot; at the cap MHD stops accepting and newcomers wait in the listen backlog. What keeps
 * well-behaved clients served:
 *  - the idle timeout (--idle-timeout, MHD's connection timeout): a connection on which nothing
 *    arrives or leaves for that long is closed (silent clients, stalled bodies, responses never
 *    read). Bytes that keep arriving keep a request alive however slowly they come: a slow
 *    link pushing a big blob is never cut.
 *  - a header deadline: MHD's timer restarts on every byte, so a client trickling its header
 *    lines would never time out. The watchdog thread (below) closes a connection that has not
 *    completed a request's headers within the idle timeout of opening or of its previous
 *    response.
 *  - shedding: a connection that arrives while the cap's worth are open closes the one that
 *    has been idle (no request in progress) the longest; only if none is idle is the newcomer
 *    itself closed. A real client sends its request as soon as it connects, so it is busy
 *    within a round trip, while a flood of connections that send nothing evicts its own
 *    oldest members; a keep-alive client that loses its idle connection opens another. Shed
 *    connections take a moment to close (their threads must run), and MHD counts them until
 *    then, closing any newcomer it accepts past its own limit: so MHD's limit is the cap plus
 *    a slack (a quarter, plus 64) that only closing connections use.
 *  - connections are watched with poll(2), not select(2), so descriptors past FD_SETSIZE work
 *    (with select MHD closed every connection whose descriptor was >= 1024), and the open-file
 *    limit is raised to what the cap needs.
 * A request in progress is never shed or cut for being slow, only for silence: clients that
 * trickle request bodies hold their slots, which the cap (and --max-connections-per-ip, off by
 * default since every test and benchmark client shares 127.0.0.1) bounds.
 *
 * The watchdog closes a connection with shutdown(2) on its socket, under the mutex that the
 * connection-closed notification also takes before MHD closes the descriptor: so the
 * descriptor it shuts down is always still that connection's. The connection's thread sees
 * end-of-file and closes it the ordinary way.
 *
 * Logging: per cause, not per connection. Each cause (connection limit reached, connections
 * shed, connections that never sent a request within the timeout, requests that stalled, and
 * each distinct message of MHD's own, keyed by its format string) is counted; the watchdog
 * logs a warning on the first occurrence and then at most one line per LOG_WINDOW_MS per cause
 * with the count since the last line, and flushes the counts at stop. A flood of the same
 * cause thus yields a bounded number of lines. At debug level every MHD message is also
 * logged as it comes. */
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The watchdog's period: the header deadline acts within this of being due. */
#define WATCH_TICK_MS 200
/* At most one log line per cause per window. */
#define LOG_WINDOW_MS 10000
/* Distinct MHD messages counted separately; later ones share the last slot. */
#define MHD_CAUSES 16
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

/* One open connection, from MHD's "started" notification to its "closed" one. */
struct http_conn {
	struct http_conn *prev, *next; /* the idle list, while listed */
	MHD_socket fd;
	int64_t idle_since; /* opened, or its last request completed (clock_mono_ms) */
	bool listed;        /* in the idle list: no request in progress, not reaped */
	bool served;        /* has completed a request */
	bool reaped;        /* shut down by the watchdog */
};

enum cause_id { CAUSE_LIMIT, CAUSE_SHED, CAUSE_IDLE, CAUSE_STALL, CAUSE_MHD };

/* A counted log cause (see the file comment). */
struct cause {
	const void *key; /* MHD's format string, for MHD's messages */
	char text[240];
	unsigned long count, reported;
	int64_t last_ms; /* when a line was last logged; 0: never */
};

struct http_server {
	struct MHD_Daemon *d;
	struct api_server *api;
	atomic_int inflight;
	MHD_socket listen_fd;
	unsigned max_conns;
	int64_t idle_timeout_ms;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t wake;
	pthread_t watch;
	bool watching, stopping;
	struct http_conn *idle_head, *idle_tail; /* oldest idle_since first */
	unsigned nconns;                         /* open connections */
	unsigned nreaping; /* of which shut down by the watchdog, not yet closed */
	struct cause causes[CAUSE_MHD + MHD_CAUSES];
	unsigned nmhd; /* MHD causes in use */
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

/* ---- connection tracking, the watchdog and counted log causes ---- */

static void idle_append(struct http_server *h, struct http_conn *c)
{
	c->prev = h->idle_tail;
	c->next = NULL;
	if (h->idle_tail)
		h->idle_tail->next = c;
	else
		h->idle_head = c;
	h->idle_tail = c;
	c->listed = true;
}

static void idle_unlink(struct http_server *h, struct http_conn *c)
{
	if (!c->listed)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->idle_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		h->idle_tail = c->prev;
	c->prev = c->next = NULL;
	c->listed = false;
}

/* Counts one event of a cause. Caller holds h->mu. */
static void cause_count(struct http_server *h, enum cause_id id)
{
	h->causes[id].count++;
}

/* Closes c (listed, so its descriptor is still its own): the connection's thread reads
 * end-of-file and closes it. Caller holds h->mu. */
static void conn_reap(struct http_server *h, struct http_conn *c)
{
	idle_unlink(h, c);
	c->reaped = true;
	h->nreaping++;
	shutdown(c->fd, SHUT_RDWR);
}

/* The header deadline (see the file comment). Caller holds h->mu. */
static void watch_reap(struct http_server *h, int64_t now)
{
	struct http_conn *c, *next;
	for (c = h->idle_head; c && now - c->idle_since >= h->idle_timeout_ms; c = next) {
		next = c->next;
		/* a keep-alive connection that goes quiet is normal; one that never completed a
		 * request in all that time is not */
		if (!c->served)
			cause_count(h, CAUSE_IDLE);
		conn_reap(h, c);
	}
}

/* Shedding (see the file comment): keeps at most the cap's worth of connections open, by
 * closing the longest idle one, else the newcomer. Caller holds h->mu. */
static void shed_for(struct http_server *h, struct http_conn *newcomer)
{
	while (h->nconns - h->nreaping > h->max_conns) {
		if (h->idle_head == newcomer || !h->idle_head) {
			cause_count(h, CAUSE_LIMIT);
			conn_reap(h, newcomer);
			return;
		}
		cause_count(h, CAUSE_SHED);
		conn_reap(h, h->idle_head);
	}
}

#define REPORT_MAX (CAUSE_MHD + MHD_CAUSES)

struct report_line {
	char s[sizeof(((struct cause *)0)->text) + 128];
};

/* Renders the lines due (all pending ones if flush) into lines[REPORT_MAX]; returns how many.
 * Caller holds h->mu; the lines are logged after it is released. */
static int watch_report(struct http_server *h, int64_t now, bool flush, struct report_line *lines)
{
	int n = 0;
	for (unsigned i = 0; i < CAUSE_MHD + h->nmhd; i++) {
		struct cause *k = &h->causes[i];
		if (k->count == k->reported)
			continue;
		if (!flush && k->last_ms && now - k->last_ms < LOG_WINDOW_MS)
			continue;
		unsigned long m = k->count - k->reported;
		snprintf(lines[n++].s, sizeof(lines[0].s), "http: %s (%lu%s%s)", k->text, m,
		         i >= CAUSE_MHD ? " of this kind" : "",
		         k->last_ms ? " since the last report" : "");
		k->reported = k->count;
		k->last_ms = now;
	}
	return n;
}

static void *watch_main(void *arg)
{
	struct http_server *h = arg;
	struct report_line lines[REPORT_MAX];
	pthread_mutex_lock(&h->mu);
	while (!h->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)WATCH_TICK_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&h->wake, &h->mu, &ts);
		if (h->stopping)
			break;
		int64_t now = clock_mono_ms();
		watch_reap(h, now);
		int n = watch_report(h, now, false, lines);
		pthread_mutex_unlock(&h->mu);
		for (int i = 0; i < n; i++)
			log_warn("%s", lines[i].s);
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* MHD's connection notifications: "started" on the listening thread before the connection's
 * thread exists, "closed" before MHD closes the descriptor. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct http_server *h = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci)
			return;
		struct http_conn *c = xcalloc(1, sizeof(*c));
		c->fd = ci->connect_fd;
		pthread_mutex_lock(&h->mu);
		c->idle_since = clock_mono_ms();
		idle_append(h, c);
		h->nconns++;
		shed_for(h, c);
		pthread_mutex_unlock(&h->mu);
		*socket_context = c;
		return;
	}
	struct http_conn *c = *socket_context;
	if (!c)
		return;
	pthread_mutex_lock(&h->mu);
	/* MHD's own timeout may close a silent connection before the watchdog sees it due */
	if (c->listed && !c->served &&
	    clock_mono_ms() - c->idle_since >= h->idle_timeout_ms - WATCH_TICK_MS)
		cause_count(h, CAUSE_IDLE);
	idle_unlink(h, c);
	h->nconns--;
	if (c->reaped)
		h->nreaping--;
	pthread_mutex_unlock(&h->mu);
	free(c);
	*socket_context = NULL;
}

static struct http_conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* A request's headers are complete: the connection is busy until the request completes.
 * false if the watchdog has already closed it. */
static bool conn_enter(struct http_server *h, struct MHD_Connection *conn)
{
	struct http_conn *c = conn_of(conn);
	if (!c)
		return true;
	pthread_mutex_lock(&h->mu);
	bool ok = !c->reaped;
	idle_unlink(h, c);
	pthread_mutex_unlock(&h->mu);
	return ok;
}

/* The request ended: the connection is idle again (it may be closing). */
static void conn_leave(struct http_server *h, struct MHD_Connection *conn,
                       enum MHD_RequestTerminationCode toe)
{
	struct http_conn *c = conn_of(conn);
	pthread_mutex_lock(&h->mu);
	if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
		cause_count(h, CAUSE_STALL);
	if (c && !c->reaped && !c->listed) {
		c->served = c->served || toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
		c->idle_since = clock_mono_ms();
		idle_append(h, c);
	}
	pthread_mutex_unlock(&h->mu);
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
		if (!conn_enter(h, conn))
			return MHD_NO;
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
	struct http_server *h = cls;
	struct http_req *hr = *con_cls;
	if (!hr)
		return;
	conn_leave(h, conn, toe);
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

/* MHD's own messages: counted per format string (one cause each), and logged one by one at
 * debug level. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *h = cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	log_debug("mhd: %s", line);
	pthread_mutex_lock(&h->mu);
	unsigned i = 0;
	while (i < h->nmhd && h->causes[CAUSE_MHD + i].key != fmt)
		i++;
	if (i == MHD_CAUSES) {
		i = MHD_CAUSES - 1; /* the last slot takes every message past the others */
	} else if (i == h->nmhd) {
		bool last = i == MHD_CAUSES - 1;
		struct cause *k = &h->causes[CAUSE_MHD + h->nmhd++];
		k->key = last ? NULL : fmt;
		snprintf(k->text, sizeof(k->text), "mhd: %.200s", last ? "other messages" : line);
	}
	h->causes[CAUSE_MHD + i].count++;
	pthread_mutex_unlock(&h->mu);
}

/* Each connection may hold a socket, an upload file, its lock file and a blob being sent; the
 * database and the log take a few more. Raises the soft open-file limit to cover that when
 * the hard limit allows (service managers often start processes at 1024). */
static void raise_fd_limit(unsigned max_conns)
{
	rlim_t want = (rlim_t)max_conns * 4 + 256;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rlim_t cur = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (rl.rlim_cur > cur && setrlimit(RLIMIT_NOFILE, &rl) != 0)
		rl.rlim_cur = cur;
	if (rl.rlim_cur < want)
		log_warn("open-file limit %llu is below the %llu that %u connections may need; "
		         "raise it (ulimit -n) or lower --max-connections",
		         (unsigned long long)rl.rlim_cur, (unsigned long long)want, max_conns);
}

static void server_free(struct http_server *h)
{
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->mu);
	free(h);
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

enum berr_code http_start(struct api_server *api, struct http_listener *l,
                          const struct http_opts *opts, struct http_server **out, struct berr *err)
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
	h->max_conns =
	    opts && opts->max_connections ? opts->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
	unsigned idle_s =
	    opts && opts->idle_timeout_s ? opts->idle_timeout_s : HTTP_DEFAULT_IDLE_TIMEOUT_S;
	unsigned per_ip = opts ? opts->max_per_ip : 0;
	h->idle_timeout_ms = (int64_t)idle_s * 1000;
	/* room for shed connections that have not closed yet (see the file comment) */
	unsigned mhd_limit = h->max_conns + h->max_conns / 4 + 64;
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->wake, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(h->causes[CAUSE_LIMIT].text, sizeof(h->causes[0].text),
	         "connection limit reached (%u open, none idle): closed new connections at once",
	         h->max_conns);
	snprintf(h->causes[CAUSE_SHED].text, sizeof(h->causes[0].text),
	         "near the connection limit (%u): closed the longest idle connections to make "
	         "room",
	         h->max_conns);
	snprintf(h->causes[CAUSE_IDLE].text, sizeof(h->causes[0].text),
	         "closed connections that sent no complete request within the idle timeout "
	         "(%us)",
	         idle_s);
	snprintf(h->causes[CAUSE_STALL].text, sizeof(h->causes[0].text),
	         "closed requests on which nothing moved for the idle timeout (%us)", idle_s);
	raise_fd_limit(mhd_limit);

	/* poll, not select: descriptors past FD_SETSIZE must work (see the file comment) */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	if (l->ipv6)
		flags |= MHD_USE_IPv6;
	/* The logger goes first: MHD reports on options with whatever logger it has by then.
	 * MHD owns the socket from here (it closes it on stop, or hands it back on quiesce). */
	h->d = MHD_start_daemon(
	    flags, (uint16_t)l->port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
	    on_mhd_log, h, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l->fd, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
	    MHD_OPTION_CONNECTION_LIMIT, mhd_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
	    MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_END);
	/* Whether a failed MHD_start_daemon closed the socket is not specified: it is left
	 * alone (closing it twice could close another thread's file; the process exits). */
	l->fd = -1;
	if (!h->d) {
		server_free(h);
		return err_set(err, BERR_IO, "cannot start the HTTP server on %s:%d", l->host,
		               l->port);
	}
	if (pthread_create(&h->watch, NULL, watch_main, h) != 0) {
		MHD_stop_daemon(h->d);
		server_free(h);
		return err_set(err, BERR_INTERNAL, "cannot start the connection watchdog");
	}
	h->watching = true;
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
	/* every connection is closed: stop the watchdog and log what it had not reported yet */
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->mu);
	if (h->watching)
		pthread_join(h->watch, NULL);
	struct report_line lines[REPORT_MAX];
	int n = watch_report(h, clock_mono_ms(), true, lines);
	for (int i = 0; i < n; i++)
		log_warn("%s", lines[i].s);
	server_free(h);
}
