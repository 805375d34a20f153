/* main.c - the berth command line: `berth serve`, the maintenance commands of tools.c
 * (gc, lifecycle, fsck), `berth --version`, `berth help`.
 * Builds the server context, owns start-up and shutdown. No global state besides the log
 * level: the context is passed down. */
#include "../base/feat.h"

#include "../api/api.h"
#include "../base/log.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../bg/bg.h"
#include "../core/core.h"
#include "../http/server.h"
#include "tools.h"

#include <ctype.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.1.0"
#endif

#define DEFAULT_LISTEN "127.0.0.1:5000"
#define DEFAULT_DATA_DIR "./berth-data"
/* Database connections: handler threads beyond this wait for a free one. */
#define DB_POOL_SIZE 16
#define SHUTDOWN_GRACE_MS 30000

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: berth <command> [options]\n"
	    "\n"
	    "commands:\n"
	    "  serve        run the registry (ECR API and OCI /v2 on one port)\n"
	    "  version      print the version (also: berth --version)\n"
	    "  help         this text\n"
	    "\n"
	    "serve options:\n"
	    "  --listen HOST:PORT      address to listen on (default %s)\n"
	    "  --data-dir DIR          metadata and blobs (default %s)\n"
	    "  --account-id ID         default 12-digit account (default %s)\n"
	    "  --credentials FILE      enable SigV4 verification; lines of\n"
	    "                          ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID ('#' comments)\n"
	    "  --log-level LEVEL       debug, info, warn or error (default info)\n"
	    "  --lifecycle-interval D  apply lifecycle policies this often (default 1h, 0 never)\n"
	    "  --gc-interval D         collect garbage this often (default 1h, 0 never)\n"
	    "  --gc-grace D            never collect what was written within D (default 1h)\n"
	    "  --storage-reserve SIZE  space pushes leave free for deletes and gc (default 64M,\n"
	    "                          or a tenth of a smaller file system)\n"
	    "  --idle-timeout D        close a connection on which nothing moves for D, or that\n"
	    "                          has not sent a request's headers D after opening or after\n"
	    "                          its last response (default %ds; whole seconds)\n"
	    "  --max-connections N     open connections; past N the longest idle one is closed\n"
	    "                          to make room (default %d)\n"
	    "  --max-connections-per-ip N\n"
	    "                          open connections per client address (default 0: no cap)\n"
	    "  -h, --help              this text\n"
	    "\n"
	    "durations: 500ms, 30s, 10m, 1h, 2d; sizes: 512K, 64M, 1G\n"
	    "One server per address and per data directory: serve exits with status 1 when\n"
	    "another process listens on the address or serves the data directory.\n",
	    DEFAULT_LISTEN, DEFAULT_DATA_DIR, DEFAULT_ACCOUNT, HTTP_DEFAULT_IDLE_TIMEOUT_S,
	    HTTP_DEFAULT_MAX_CONNECTIONS);
}

/* Splits "host:port" / "[v6]:port" / ":port". */
static int parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		snprintf(host, hostlen, "%.*s", (int)(rb - s - 1), s + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		snprintf(host, hostlen, "%.*s", (int)(colon - s), s);
		if (!*host)
			snprintf(host, hostlen, "0.0.0.0");
	}
	char *end = NULL;
	long p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 0 || p > 65535)
		return -1;
	*port = (int)p;
	return 0;
}

static bool is_account(const char *s)
{
	if (strlen(s) != 12)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static int cmd_serve(int argc, char **argv)
{
	const char *listen = DEFAULT_LISTEN, *data_dir = DEFAULT_DATA_DIR;
	const char *account = DEFAULT_ACCOUNT, *creds = NULL;
	int64_t reserve = -1;
	struct bg_opts bo = {3600000, 3600000, 3600000};
	struct http_opts ho = {0, 0, 0};
	static const struct option opts[] = {
	    {"idle-timeout", required_argument, NULL, 'T'},
	    {"max-connections", required_argument, NULL, 'C'},
	    {"max-connections-per-ip", required_argument, NULL, 'P'},
	    {"lifecycle-interval", required_argument, NULL, 'L'},
	    {"gc-interval", required_argument, NULL, 'G'},
	    {"gc-grace", required_argument, NULL, 'g'},
	    {"storage-reserve", required_argument, NULL, 'R'},
	    {"listen", required_argument, NULL, 'l'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"account-id", required_argument, NULL, 'a'},
	    {"credentials", required_argument, NULL, 'c'},
	    {"log-level", required_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen = optarg;
			break;
		case 'd':
			data_dir = optarg;
			break;
		case 'a':
			account = optarg;
			break;
		case 'c':
			creds = optarg;
			break;
		case 'R':
			if ((reserve = size_parse_bytes(optarg)) < 0) {
				fprintf(stderr, "berth: bad size '%s' (try 512M, 1G)\n", optarg);
				return 2;
			}
			break;
		case 'L':
		case 'G':
		case 'g': {
			int64_t ms = duration_parse_ms(optarg);
			if (ms < 0) {
				fprintf(stderr, "berth: bad duration '%s' (try 30s, 10m, 1h)\n",
				        optarg);
				return 2;
			}
			*(ch == 'L'   ? &bo.lifecycle_interval_ms
			  : ch == 'G' ? &bo.gc_interval_ms
			              : &bo.gc_grace_ms) = ms;
			break;
		}
		case 'T': {
			/* MHD counts its connection timeout in whole seconds: round up */
			int64_t ms = duration_parse_ms(optarg);
			if (ms <= 0 || ms > 86400000) {
				fprintf(stderr,
				        "berth: --idle-timeout wants a duration from 1s to 1d, got "
				        "'%s'\n",
				        optarg);
				return 2;
			}
			ho.idle_timeout_s = (unsigned)((ms + 999) / 1000);
			break;
		}
		case 'C':
		case 'P': {
			char *end = NULL;
			long n = strtol(optarg, &end, 10);
			long lo = ch == 'C' ? 1 : 0;
			if (!*optarg || *end || n < lo || n > 65536) {
				fprintf(stderr,
				        "berth: --%s wants a number from %ld to 65536, got '%s'\n",
				        ch == 'C' ? "max-connections" : "max-connections-per-ip",
				        lo, optarg);
				return 2;
			}
			*(ch == 'C' ? &ho.max_connections : &ho.max_per_ip) = (unsigned)n;
			break;
		}
		case 'v': {
			int l = log_level_parse(optarg);
			if (l < 0) {
				fprintf(stderr, "berth: unknown log level '%s'\n", optarg);
				return 2;
			}
			log_set_level((enum log_level)l);
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "berth: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	char host[256];
	int port = 0;
	if (parse_listen(listen, host, sizeof(host), &port) < 0) {
		fprintf(stderr, "berth: --listen wants HOST:PORT, got '%s'\n", listen);
		return 2;
	}
	if (!is_account(account)) {
		fprintf(stderr, "berth: --account-id must be 12 digits\n");
		return 2;
	}

	/* Block the shutdown signals in every thread; main waits for them with sigwait. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct berr err;
	err_clear(&err);
	struct api_server api = {0};
	snprintf(api.default_account, sizeof(api.default_account), "%s", account);
	api.base_url = xasprintf("http://%s", listen);
	struct core *core = NULL;
	struct http_server *http = NULL;
	struct http_listener listener = {.fd = -1};
	struct bg *bg = NULL;
	int owner = -1;
	int status = 1;
	if (creds && api_creds_load(&api, creds, &err) != BERR_OK) {
		fprintf(stderr, "berth: %s\n", err.msg);
		goto out;
	}
	/* One server per port and per data directory, checked before anything is opened: the
	 * port is bound (not yet accepting), then the directory locked. */
	if (http_bind(host, port, &listener, &err) != BERR_OK) {
		fprintf(stderr, "berth: %s\n", err.msg);
		goto out;
	}
	if (core_serve_lock(data_dir, &owner, &err) != BERR_OK) {
		fprintf(stderr, "berth: %s\n", err.msg);
		goto out;
	}
	if (core_open(data_dir, DB_POOL_SIZE, &core, &err) != BERR_OK) {
		fprintf(stderr, "berth: cannot open data directory %s: %s\n", data_dir, err.msg);
		goto out;
	}
	api.core = core;
	core->reserve = reserve;
	if (bg_start(core, &bo, &bg, &err) != BERR_OK) {
		fprintf(stderr, "berth: %s\n", err.msg);
		goto out;
	}
	if (http_start(&api, &listener, &ho, &http, &err) != BERR_OK) {
		fprintf(stderr, "berth: %s\n", err.msg);
		goto out;
	}
	log_info("berth %s listening on %s (data %s, %s)", BERTH_VERSION, listen, data_dir,
	         creds ? "SigV4 verified" : "no credentials: any signature accepted");
	int sig = 0;
	sigwait(&sigs, &sig);
	log_info("received %s, finishing in-flight requests",
	         sig == SIGTERM ? "SIGTERM" : "SIGINT");
	http_stop(http, SHUTDOWN_GRACE_MS);
	http = NULL;
	status = 0;
out:
	http_stop(http, 0);
	http_unbind(&listener);
	bg_stop(bg);
	core_close(core);
	core_serve_unlock(owner);
	api_server_fini(&api);
	if (status == 0)
		log_info("stopped");
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("berth %s\n", BERTH_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "gc") == 0)
		return cmd_gc(argc - 1, argv + 1);
	if (strcmp(cmd, "lifecycle") == 0)
		return cmd_lifecycle(argc - 1, argv + 1);
	if (strcmp(cmd, "fsck") == 0)
		return cmd_fsck(argc - 1, argv + 1);
	fprintf(stderr, "berth: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
