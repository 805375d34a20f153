/* loadgen - a small closed-loop HTTP/1.1 load client for berth's benchmarks (bench/bench.py).
 *
 * wrk cannot be used for every workload: it waits for a body after a HEAD response that
 * carries Content-Length (which registries must send), so it hangs on manifest HEAD. This
 * client keeps C connections busy (each sends its next request as soon as the previous
 * response is complete), records every latency, and prints one JSON line.
 *
 *   loadgen -a HOST:PORT [-c CONNS] [-t THREADS] [-d SECONDS] [-n REQUESTS] [-m METHOD]
 *           [-u PATH] [-H "Name: value"]... [-b BODYFILE] [-P IDPREFIX] [-T TIMEOUT_MS]
 *
 *   -d  stop issuing requests after this many seconds (default 5; always a bound)
 *   -n  stop after this many requests in total (then -d is only a safety bound)
 *   -b  request body
 *   -S  serve FILE from a forked server process (one thread per connection doing nothing but
 *       sendfile(2), no -a needed) and measure it: the loopback sendfile limit for this client,
 *       the ceiling any registry's blob GET can reach here
 *   Each "@ID@" in PATH and the body is replaced per request by IDPREFIX<n>, n counting
 *   0, 1, 2, ... over the run (distinct manifests and tags for PutImage, repository names).
 *
 * Responses: Content-Length, chunked, or read-until-close bodies; HEAD/204/304 have none;
 * "Connection: close" and HTTP/1.0 responses reconnect. Bodies are counted, not kept (the
 * first error response's head and up to 512 body bytes are reported as "first_error").
 * Output: {"requests","duration_us","bytes","s2xx","s3xx","s4xx","s5xx","connect_err",
 * "read_err","timeouts","lat_mean_us","lat_p50_us","lat_p90_us","lat_p99_us","lat_max_us",
 * "first_error"} -- latencies in microseconds, requests = completed responses.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define MAX_THREADS 64
#define MAX_HDRS 64
#define HEAD_MAX (64 * 1024)
#define LAT_CAP (50u * 1000u * 1000u) /* latencies kept per thread, at most */
#define ERR_BODY_MAX 512
#define MAX_CONNECT_ERRORS 1000

enum cstate {
	C_IDLE,
	C_CONNECTING,
	C_SENDING,
	C_HEAD,
	C_BODY_LEN,
	C_CHUNK_SIZE,
	C_CHUNK_DATA,
	C_CHUNK_CRLF,
	C_TRAILER,
	C_BODY_CLOSE
};

struct conn {
	int fd;
	enum cstate st;
	char *req; /* request bytes (owned if templated) */
	size_t req_len, req_off;
	bool req_owned;
	uint64_t t0; /* request start, ns */
	char head[HEAD_MAX];
	size_t head_len;
	int status;
	bool close_after;
	uint64_t remain; /* body bytes left (C_BODY_LEN / C_CHUNK_DATA) */
	char line[128];  /* chunk-size / trailer line */
	size_t line_len;
	bool capture; /* this response is the thread's first error: keep some body */
};

struct thr {
	pthread_t th;
	int id, nconns;
	struct conn *conns;
	uint32_t *lat;
	size_t nlat, caplat;
	uint64_t requests, bytes, s[6], connect_err, read_err, timeouts;
	uint64_t lat_sum, lat_max;
	char err[HEAD_MAX + ERR_BODY_MAX + 64];
	size_t err_len;
	bool have_err;
};

static struct sockaddr_in g_addr;
static char g_hostport[256];
static const char *g_method = "GET", *g_path = "/", *g_prefix = "";
static char g_headers[16384];
static char *g_body;
static size_t g_body_len;
static bool g_templated, g_head;
static char *g_prebuilt;
static size_t g_prebuilt_len;
static double g_duration = 5.0;
static long long g_total = -1;
static atomic_llong g_issued, g_seq;
static uint64_t g_timeout_ns = 30ull * 1000000000ull;
static uint64_t g_start, g_deadline;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
	fprintf(stderr, "loadgen: %s\n", msg);
	exit(2);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot open body file");
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			b = realloc(b, cap);
			if (!b)
				die("out of memory");
		}
		size_t r = fread(b + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	*len = n;
	return b;
}

/* A copy of s[0..n) with every "@ID@" replaced by id; *outlen its length. */
static char *subst(const char *s, size_t n, const char *id, size_t *outlen)
{
	size_t il = strlen(id), cnt = 0;
	for (const char *p = s; n && (p = memmem(p, n - (size_t)(p - s), "@ID@", 4)); p += 4)
		cnt++;
	char *out = malloc(n + cnt * il + 1);
	if (!out)
		die("out of memory");
	size_t o = 0;
	const char *p = s, *end = s + n;
	while (p < end) {
		const char *q = memmem(p, (size_t)(end - p), "@ID@", 4);
		if (!q) {
			memcpy(out + o, p, (size_t)(end - p));
			o += (size_t)(end - p);
			break;
		}
		memcpy(out + o, p, (size_t)(q - p));
		o += (size_t)(q - p);
		memcpy(out + o, id, il);
		o += il;
		p = q + 4;
	}
	out[o] = 0;
	*outlen = o;
	return out;
}

/* Request bytes for one request; in templated mode every @ID@ in the path and the body
 * becomes IDPREFIX<id>. */
static char *build_request(long long id, size_t *len)
{
	char idbuf[128];
	snprintf(idbuf, sizeof idbuf, "%s%lld", g_prefix, id);
	size_t blen = g_body_len, plen;
	char *body =
	    g_body ? (g_templated ? subst(g_body, g_body_len, idbuf, &blen) : g_body) : NULL;
	char *path = g_templated ? subst(g_path, strlen(g_path), idbuf, &plen) : (char *)g_path;
	char hdr[20000];
	int hl;
	if (body)
		hl = snprintf(hdr, sizeof hdr,
		              "%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %zu\r\n\r\n",
		              g_method, path, g_hostport, g_headers, blen);
	else
		hl = snprintf(hdr, sizeof hdr, "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", g_method,
		              path, g_hostport, g_headers);
	if (hl < 0 || (size_t)hl >= sizeof hdr)
		die("request head too long");
	char *r = malloc((size_t)hl + blen + 1);
	if (!r)
		die("out of memory");
	memcpy(r, hdr, (size_t)hl);
	if (body)
		memcpy(r + hl, body, blen);
	if (body != g_body)
		free(body);
	if (path != g_path)
		free(path);
	*len = (size_t)hl + blen;
	return r;
}

static void conn_close(struct thr *t, int ep, struct conn *c)
{
	(void)t;
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->st = C_IDLE;
}

static bool may_issue(void)
{
	if (now_ns() >= g_deadline)
		return false;
	if (g_total >= 0)
		return atomic_fetch_add(&g_issued, 1) < g_total;
	return true;
}

static int conn_open(struct thr *t, int ep, struct conn *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int r = connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr);
	if (r < 0 && errno != EINPROGRESS) {
		close(fd);
		t->connect_err++;
		return -1;
	}
	c->fd = fd;
	c->st = C_CONNECTING;
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

/* Start the next request on c (connection open or being opened). false: nothing to issue. */
static bool start_request(struct thr *t, int ep, struct conn *c)
{
	if (!may_issue())
		return false;
	if (c->req_owned)
		free(c->req);
	if (g_templated) {
		c->req = build_request(atomic_fetch_add(&g_seq, 1), &c->req_len);
		c->req_owned = true;
	} else {
		c->req = g_prebuilt;
		c->req_len = g_prebuilt_len;
		c->req_owned = false;
	}
	c->req_off = 0;
	c->head_len = 0;
	c->status = 0;
	c->close_after = false;
	c->capture = false;
	c->t0 = now_ns();
	if (c->fd < 0) {
		if (conn_open(t, ep, c) < 0)
			return false;
	} else {
		c->st = C_SENDING;
		struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
	return true;
}

static void record(struct thr *t, struct conn *c)
{
	uint64_t now = now_ns();
	if (g_total < 0 && now > g_deadline)
		return; /* duration mode: only responses completed within the duration count */
	uint64_t us = (now - c->t0) / 1000;
	if (us > UINT32_MAX)
		us = UINT32_MAX;
	if (t->nlat < LAT_CAP) {
		if (t->nlat == t->caplat) {
			t->caplat = t->caplat ? t->caplat * 2 : 65536;
			t->lat = realloc(t->lat, t->caplat * sizeof *t->lat);
			if (!t->lat)
				die("out of memory");
		}
		t->lat[t->nlat++] = (uint32_t)us;
	}
	t->lat_sum += us;
	if (us > t->lat_max)
		t->lat_max = us;
	t->requests++;
	int k = c->status / 100;
	t->s[k >= 0 && k < 6 ? k : 0]++;
}

static const char *hdr_value(const char *head, size_t len, const char *name, char *out,
                             size_t outsz)
{
	size_t nl = strlen(name);
	const char *p = memchr(head, '\n', len);
	while (p && (size_t)(p - head) < len) {
		p++;
		const char *eol = memchr(p, '\n', len - (size_t)(p - head));
		if (!eol)
			break;
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			size_t vl = (size_t)(eol - v);
			while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
				vl--;
			if (vl >= outsz)
				vl = outsz - 1;
			memcpy(out, v, vl);
			out[vl] = 0;
			return out;
		}
		p = eol;
	}
	return NULL;
}

/* Parse the complete response head. Sets the body state. */
static void parse_head(struct thr *t, struct conn *c)
{
	char v[256];
	int minor = 1;
	if (sscanf(c->head, "HTTP/1.%d %d", &minor, &c->status) != 2)
		c->status = 0;
	c->close_after = minor == 0;
	if (hdr_value(c->head, c->head_len, "Connection", v, sizeof v)) {
		if (strcasestr(v, "close"))
			c->close_after = true;
		else if (strcasestr(v, "keep-alive"))
			c->close_after = false;
	}
	if ((c->status < 200 || c->status >= 300) && c->status != 304 && !t->have_err) {
		t->have_err = true;
		c->capture = true;
		size_t n = c->head_len < HEAD_MAX ? c->head_len : HEAD_MAX;
		memcpy(t->err, c->head, n);
		t->err_len = n;
	}
	if (g_head || c->status == 204 || c->status == 304 || c->status / 100 == 1) {
		c->remain = 0;
		c->st = C_BODY_LEN;
		return;
	}
	if (hdr_value(c->head, c->head_len, "Transfer-Encoding", v, sizeof v) &&
	    strcasestr(v, "chunked")) {
		c->st = C_CHUNK_SIZE;
		c->line_len = 0;
		return;
	}
	if (hdr_value(c->head, c->head_len, "Content-Length", v, sizeof v)) {
		c->remain = strtoull(v, NULL, 10);
		c->st = C_BODY_LEN;
		return;
	}
	c->st = C_BODY_CLOSE;
	c->close_after = true;
}

static void capture(struct thr *t, struct conn *c, const char *p, size_t n)
{
	if (!c->capture)
		return;
	size_t room = sizeof t->err - t->err_len;
	if (room > ERR_BODY_MAX)
		room = ERR_BODY_MAX;
	if (n > room)
		n = room;
	memcpy(t->err + t->err_len, p, n);
	t->err_len += n;
}

/* Consume input; returns 1 when the response is complete, 0 need more, -1 protocol error. */
static int consume(struct thr *t, struct conn *c, const char *p, size_t n)
{
	while (n > 0 || c->st == C_BODY_LEN) {
		switch (c->st) {
		case C_HEAD: {
			size_t take = HEAD_MAX - 1 - c->head_len;
			if (take == 0)
				return -1;
			if (take > n)
				take = n;
			size_t old = c->head_len;
			memcpy(c->head + old, p, take);
			c->head_len += take;
			c->head[c->head_len] = 0;
			size_t from = old > 3 ? old - 3 : 0;
			char *e = memmem(c->head + from, c->head_len - from, "\r\n\r\n", 4);
			if (!e) {
				p += take;
				n -= take;
				break;
			}
			size_t hl = (size_t)(e - c->head) + 4;
			size_t used = hl - old;
			c->head_len = hl;
			c->head[hl] = 0;
			p += used;
			n -= used;
			parse_head(t, c);
			break;
		}
		case C_BODY_LEN: {
			if (c->remain == 0)
				return 1;
			size_t take = n < c->remain ? n : (size_t)c->remain;
			if (take == 0)
				return 0;
			capture(t, c, p, take);
			c->remain -= take;
			p += take;
			n -= take;
			if (c->remain == 0)
				return 1;
			break;
		}
		case C_CHUNK_SIZE:
		case C_TRAILER: {
			const char *nl = memchr(p, '\n', n);
			size_t take = nl ? (size_t)(nl - p) + 1 : n;
			if (c->line_len + take < sizeof c->line) {
				memcpy(c->line + c->line_len, p, take);
				c->line_len += take;
			} else if (c->st == C_CHUNK_SIZE) {
				return -1;
			}
			p += take;
			n -= take;
			if (!nl)
				break;
			c->line[c->line_len < sizeof c->line ? c->line_len : sizeof c->line - 1] =
			    0;
			if (c->st == C_CHUNK_SIZE) {
				char *end = NULL;
				unsigned long long sz = strtoull(c->line, &end, 16);
				if (end == c->line)
					return -1;
				c->line_len = 0;
				if (sz == 0) {
					c->st = C_TRAILER;
				} else {
					c->remain = sz;
					c->st = C_CHUNK_DATA;
				}
			} else {
				bool empty = c->line_len <= 2;
				c->line_len = 0;
				if (empty) {
					c->st = C_BODY_LEN;
					c->remain = 0;
					return 1;
				}
			}
			break;
		}
		case C_CHUNK_DATA: {
			size_t take = n < c->remain ? n : (size_t)c->remain;
			capture(t, c, p, take);
			c->remain -= take;
			p += take;
			n -= take;
			if (c->remain == 0) {
				c->st = C_CHUNK_CRLF;
				c->remain = 2;
			}
			break;
		}
		case C_CHUNK_CRLF: {
			size_t take = n < c->remain ? n : (size_t)c->remain;
			c->remain -= take;
			p += take;
			n -= take;
			if (c->remain == 0) {
				c->st = C_CHUNK_SIZE;
				c->line_len = 0;
			}
			break;
		}
		case C_BODY_CLOSE:
			capture(t, c, p, n);
			return 0;
		default:
			return -1;
		}
	}
	return 0;
}

/* The response on c is complete: record it, then reuse or reopen the connection. */
static void complete(struct thr *t, int ep, struct conn *c)
{
	record(t, c);
	if (c->close_after)
		conn_close(t, ep, c);
	else
		c->st = C_IDLE;
	if (!start_request(t, ep, c) && c->fd >= 0) {
		conn_close(t, ep, c);
	}
}

static void fail(struct thr *t, int ep, struct conn *c, bool timeout)
{
	if (timeout)
		t->timeouts++;
	else
		t->read_err++;
	conn_close(t, ep, c);
	if (!start_request(t, ep, c))
		c->st = C_IDLE;
}

static void on_event(struct thr *t, int ep, struct conn *c, uint32_t events)
{
	static __thread char rbuf[256 * 1024];
	if (c->st == C_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			t->connect_err++;
			conn_close(t, ep, c);
			if (t->connect_err > MAX_CONNECT_ERRORS)
				return;
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
			if (!start_request(t, ep, c))
				c->st = C_IDLE;
			return;
		}
		c->st = C_SENDING;
	}
	if (c->st == C_SENDING && (events & EPOLLOUT)) {
		while (c->req_off < c->req_len) {
			ssize_t w =
			    send(c->fd, c->req + c->req_off, c->req_len - c->req_off, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN)
					return;
				fail(t, ep, c, false);
				return;
			}
			c->req_off += (size_t)w;
		}
		c->st = C_HEAD;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		return;
	}
	if (c->st >= C_HEAD && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		for (int rounds = 0; rounds < 64; rounds++) {
			ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
			if (r < 0) {
				if (errno == EAGAIN)
					return;
				fail(t, ep, c, false);
				return;
			}
			if (r == 0) {
				if (c->st == C_BODY_CLOSE) {
					c->close_after = true;
					complete(t, ep, c);
				} else {
					fail(t, ep, c, false);
				}
				return;
			}
			t->bytes += (uint64_t)r;
			int k = consume(t, c, rbuf, (size_t)r);
			if (k < 0) {
				fail(t, ep, c, false);
				return;
			}
			if (k == 1) {
				complete(t, ep, c);
				return;
			}
		}
	}
}

static void *run_thread(void *arg)
{
	struct thr *t = arg;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	for (int i = 0; i < t->nconns; i++) {
		t->conns[i].fd = -1;
		t->conns[i].st = C_IDLE;
		if (!start_request(t, ep, &t->conns[i]))
			t->conns[i].st = C_IDLE;
	}
	struct epoll_event evs[256];
	for (;;) {
		uint64_t now = now_ns();
		int active = 0;
		for (int i = 0; i < t->nconns; i++) {
			struct conn *c = &t->conns[i];
			if (c->st == C_IDLE)
				continue;
			if (now >= g_deadline + g_timeout_ns || now - c->t0 > g_timeout_ns) {
				t->timeouts++;
				conn_close(t, ep, c);
				if (!start_request(t, ep, c))
					c->st = C_IDLE;
			}
			if (c->st != C_IDLE)
				active++;
		}
		if (!active || t->connect_err > MAX_CONNECT_ERRORS)
			break;
		if (now >= g_deadline && g_total < 0)
			break; /* duration mode: in-flight requests at the deadline are not counted */
		int n = epoll_wait(ep, evs, 256, 50);
		for (int i = 0; i < n; i++)
			on_event(t, ep, evs[i].data.ptr, evs[i].events);
	}
	for (int i = 0; i < t->nconns; i++)
		conn_close(t, ep, &t->conns[i]);
	close(ep);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void json_str(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: loadgen {-a HOST:PORT | -S FILE} [-c CONNS] [-t THREADS] [-d SECONDS]\n"
	        "               [-n REQUESTS] [-m METHOD] [-u PATH] [-H 'Name: value']...\n"
	        "               [-b BODYFILE] [-P IDPREFIX] [-T TIMEOUT_MS]\n");
	exit(2);
}

/* ---- -S: the sendfile-only server */

static int g_sf_fd = -1;
static off_t g_sf_size;
static pid_t g_sf_pid;
/* Bytes per sendfile(2) call, as a server with a bounded per-call size (MHD: 2 MiB) would. */
#define SF_CHUNK ((size_t)2 << 20)

/* One connection: for each request head, a 200 with the whole file. */
static void *sf_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as HTTP servers do */
	char head[HEAD_MAX];
	size_t have = 0;
	char hdr[128];
	int hl = snprintf(hdr, sizeof hdr,
	                  "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
	                  "Content-Length: %lld\r\n\r\n",
	                  (long long)g_sf_size);
	for (;;) {
		char *end = memmem(head, have, "\r\n\r\n", 4);
		if (!end) {
			if (have == sizeof head)
				break;
			ssize_t r = recv(fd, head + have, sizeof head - have, 0);
			if (r <= 0)
				break;
			have += (size_t)r;
			continue;
		}
		size_t used = (size_t)(end + 4 - head);
		memmove(head, head + used, have - used);
		have -= used;
		if (send(fd, hdr, (size_t)hl, MSG_MORE) != hl)
			break;
		off_t off = 0;
		while (off < g_sf_size) {
			size_t left = (size_t)(g_sf_size - off);
			ssize_t w = sendfile(fd, g_sf_fd, &off, left < SF_CHUNK ? left : SF_CHUNK);
			if (w <= 0)
				goto out;
		}
	}
out:
	close(fd);
	return NULL;
}

static void *sf_accept(void *arg)
{
	int ls = (int)(intptr_t)arg;
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_t th;
		if (pthread_create(&th, NULL, sf_conn, (void *)(intptr_t)fd) != 0)
			close(fd);
		else
			pthread_detach(th);
	}
	return NULL;
}

/* Starts the server on 127.0.0.1:<ephemeral>; writes "127.0.0.1:<port>" into addr. */
static void sf_start(const char *file, char *addr, size_t addr_len)
{
	struct stat st;
	g_sf_fd = open(file, O_RDONLY | O_CLOEXEC);
	if (g_sf_fd < 0 || fstat(g_sf_fd, &st) != 0)
		die("-S: cannot open the file");
	g_sf_size = st.st_size;
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1024) != 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &al) != 0)
		die("-S: cannot listen on loopback");
	/* A process of its own, as a registry would be (threads of one process would share the
	 * client's scheduling); it dies with us. */
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(0);
		sf_accept((void *)(intptr_t)ls);
		_exit(0);
	}
	close(ls);
	g_sf_pid = pid;
	snprintf(addr, addr_len, "127.0.0.1:%d", ntohs(a.sin_port));
}

int main(int argc, char **argv)
{
	int conns = 1, threads = 1, opt;
	const char *addr = NULL, *bodyfile = NULL, *sf_file = NULL;
	char sf_addr[64];
	size_t hl = 0;
	while ((opt = getopt(argc, argv, "a:c:t:d:n:m:u:H:b:P:T:S:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'c':
			conns = atoi(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'd':
			g_duration = atof(optarg);
			break;
		case 'n':
			g_total = atoll(optarg);
			break;
		case 'm':
			g_method = optarg;
			break;
		case 'u':
			g_path = optarg;
			break;
		case 'H': {
			int w = snprintf(g_headers + hl, sizeof g_headers - hl, "%s\r\n", optarg);
			if (w < 0 || (size_t)w >= sizeof g_headers - hl)
				die("too many headers");
			hl += (size_t)w;
			break;
		}
		case 'b':
			bodyfile = optarg;
			break;
		case 'P':
			g_prefix = optarg;
			break;
		case 'T':
			g_timeout_ns = (uint64_t)atoll(optarg) * 1000000ull;
			break;
		case 'S':
			sf_file = optarg;
			break;
		default:
			usage();
		}
	}
	if (sf_file) {
		signal(SIGPIPE, SIG_IGN); /* the client side closes mid-body at the deadline */
		sf_start(sf_file, sf_addr, sizeof sf_addr);
		addr = sf_addr;
	}
	if (!addr || conns < 1 || conns > MAX_CONNS || threads < 1 || threads > MAX_THREADS ||
	    g_duration <= 0 || g_duration > 3600)
		usage();
	if (threads > conns)
		threads = conns;
	const char *colon = strrchr(addr, ':');
	if (!colon)
		usage();
	char host[200];
	snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	g_addr.sin_family = AF_INET;
	g_addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &g_addr.sin_addr) != 1)
		die("-a needs an IPv4 address:port");
	snprintf(g_hostport, sizeof g_hostport, "%s", addr);
	g_head = strcasecmp(g_method, "HEAD") == 0;
	if (bodyfile) {
		g_body = slurp(bodyfile, &g_body_len);
		g_templated = memmem(g_body, g_body_len, "@ID@", 4) != NULL;
	}
	if (strstr(g_path, "@ID@"))
		g_templated = true;
	if (!g_templated)
		g_prebuilt = build_request(0, &g_prebuilt_len);

	struct thr *ts = calloc((size_t)threads, sizeof *ts);
	struct conn *all = calloc((size_t)conns, sizeof *all);
	if (!ts || !all)
		die("out of memory");
	g_start = now_ns();
	g_deadline = g_start + (uint64_t)(g_duration * 1e9);
	int off = 0;
	for (int i = 0; i < threads; i++) {
		ts[i].id = i;
		ts[i].nconns = conns / threads + (i < conns % threads);
		ts[i].conns = all + off;
		off += ts[i].nconns;
		if (pthread_create(&ts[i].th, NULL, run_thread, &ts[i]))
			die("pthread_create");
	}
	for (int i = 0; i < threads; i++)
		pthread_join(ts[i].th, NULL);
	uint64_t end = now_ns();
	if (g_total < 0 && end > g_deadline)
		end = g_deadline;

	uint64_t req = 0, bytes = 0, s[6] = {0}, ce = 0, re = 0, to = 0, sum = 0, mx = 0;
	size_t nlat = 0;
	for (int i = 0; i < threads; i++) {
		req += ts[i].requests;
		bytes += ts[i].bytes;
		for (int k = 0; k < 6; k++)
			s[k] += ts[i].s[k];
		ce += ts[i].connect_err;
		re += ts[i].read_err;
		to += ts[i].timeouts;
		sum += ts[i].lat_sum;
		if (ts[i].lat_max > mx)
			mx = ts[i].lat_max;
		nlat += ts[i].nlat;
	}
	uint32_t *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
	if (!lat)
		die("out of memory");
	size_t o = 0;
	for (int i = 0; i < threads; i++) {
		if (ts[i].nlat)
			memcpy(lat + o, ts[i].lat, ts[i].nlat * sizeof *lat);
		o += ts[i].nlat;
	}
	qsort(lat, nlat, sizeof *lat, cmp_u32);
#define PCT(p) (nlat ? lat[(size_t)((double)(nlat - 1) * (p))] : 0)
	printf(
	    "{\"requests\":%llu,\"duration_us\":%llu,\"bytes\":%llu,\"s2xx\":%llu,\"s3xx\":%llu,"
	    "\"s4xx\":%llu,\"s5xx\":%llu,\"connect_err\":%llu,\"read_err\":%llu,\"timeouts\":%llu,"
	    "\"lat_mean_us\":%.1f,\"lat_p50_us\":%u,\"lat_p90_us\":%u,\"lat_p99_us\":%u,"
	    "\"lat_max_us\":%llu,\"first_error\":",
	    (unsigned long long)req, (unsigned long long)((end - g_start) / 1000),
	    (unsigned long long)bytes, (unsigned long long)s[2], (unsigned long long)s[3],
	    (unsigned long long)s[4], (unsigned long long)s[5], (unsigned long long)ce,
	    (unsigned long long)re, (unsigned long long)to, req ? (double)sum / (double)req : 0.0,
	    PCT(0.50), PCT(0.90), PCT(0.99), (unsigned long long)mx);
	bool any = false;
	for (int i = 0; i < threads && !any; i++) {
		if (ts[i].have_err) {
			json_str(ts[i].err, ts[i].err_len);
			any = true;
		}
	}
	if (!any)
		fputs("null", stdout);
	puts("}");
	if (g_sf_pid > 0)
		kill(g_sf_pid, SIGKILL);
	return 0;
}
