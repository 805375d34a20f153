/* tools.c - `berth gc`, `berth lifecycle` and `berth fsck`. */
#include "../base/feat.h"

#include "tools.h"
#include "../base/log.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../core/core.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOOL_POOL 2

struct tool_args {
	const char *data_dir;
	const char *repo;
	const char *account;
	const char *region;
	int64_t grace_ms;
	bool dry_run;
	bool repair;
	bool history;
};

/* Shared option parser; `allowed` lists the long options the command accepts. */
static int parse_args(const char *cmd, int argc, char **argv, const char *allowed,
                      struct tool_args *a)
{
	static const struct option opts[] = {
	    {"data-dir", required_argument, NULL, 'd'},   {"repo", required_argument, NULL, 'r'},
	    {"account-id", required_argument, NULL, 'a'}, {"region", required_argument, NULL, 'R'},
	    {"grace", required_argument, NULL, 'g'},      {"dry-run", no_argument, NULL, 'n'},
	    {"repair", no_argument, NULL, 'x'},           {"history", no_argument, NULL, 'H'},
	    {"log-level", required_argument, NULL, 'v'},  {NULL, 0, NULL, 0},
	};
	memset(a, 0, sizeof(*a));
	a->data_dir = "./berth-data";
	a->account = DEFAULT_ACCOUNT;
	a->region = DEFAULT_REGION;
	a->grace_ms = 3600000;
	int ch, idx = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		if (ch == '?' || !strstr(allowed, opts[idx].name)) {
			fprintf(stderr, "berth %s: unknown option; see `berth help`\n", cmd);
			return 2;
		}
		switch (ch) {
		case 'd':
			a->data_dir = optarg;
			break;
		case 'r':
			a->repo = optarg;
			break;
		case 'a':
			a->account = optarg;
			break;
		case 'R':
			a->region = optarg;
			break;
		case 'g':
			if ((a->grace_ms = duration_parse_ms(optarg)) < 0) {
				fprintf(stderr, "berth %s: bad duration '%s'\n", cmd, optarg);
				return 2;
			}
			break;
		case 'n':
			a->dry_run = true;
			break;
		case 'x':
			a->repair = true;
			break;
		case 'H':
			a->history = true;
			break;
		case 'v': {
			int l = log_level_parse(optarg);
			if (l < 0)
				return 2;
			log_set_level((enum log_level)l);
			break;
		}
		}
	}
	if (optind < argc) {
		fprintf(stderr, "berth %s: unexpected argument '%s'\n", cmd, argv[optind]);
		return 2;
	}
	return 0;
}

static struct core *open_core(const char *cmd, const char *dir, struct meta **m)
{
	struct berr err;
	err_clear(&err);
	struct core *c = NULL;
	if (core_open(dir, TOOL_POOL, &c, &err) != BERR_OK) {
		fprintf(stderr, "berth %s: cannot open data directory %s: %s\n", cmd, dir, err.msg);
		return NULL;
	}
	*m = meta_pool_acquire(c->pool);
	return c;
}

static void close_core(struct core *c, struct meta *m)
{
	meta_pool_release(c->pool, m);
	core_close(c);
}

static void print_progress(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "%s\n", msg);
}

int cmd_gc(int argc, char **argv)
{
	struct tool_args a;
	int rc = parse_args("gc", argc, argv, "data-dir grace dry-run log-level", &a);
	if (rc)
		return rc;
	struct meta *m = NULL;
	struct core *c = open_core("gc", a.data_dir, &m);
	if (!c)
		return 1;
	struct core_gc_opts o = {a.grace_ms, a.dry_run, print_progress, NULL};
	struct core_gc_stats st;
	struct berr err;
	err_clear(&err);
	rc = 0;
	if (core_gc(c, m, &o, &st, &err) != BERR_OK) {
		fprintf(stderr, "berth gc: %s\n", err.msg);
		rc = 1;
	} else {
		const char *verb = a.dry_run ? "would free" : "freed";
		printf("gc: %s %" PRId64 " blobs (%" PRId64 " bytes), %" PRId64
		       " upload sessions, %" PRId64 " orphan files (%" PRId64 " bytes)\n",
		       verb, st.blobs, st.bytes, st.uploads, st.orphan_files, st.orphan_bytes);
	}
	close_core(c, m);
	return rc;
}

static void fmt_time(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_action(void *ctx, const struct meta_repo *repo, const struct core_lc_action *x)
{
	bool dry = *(bool *)ctx;
	char pushed[32];
	fmt_time(x->pushed_at, pushed, sizeof(pushed));
	printf("%s %s/%s/%s %s pushed %s rule %d tags [",
	       x->expire ? (dry ? "would-expire" : "expired") : "would-transition", repo->account,
	       repo->region, repo->name, x->digest, pushed, x->rule_priority);
	for (size_t i = 0; i < x->ntags; i++)
		printf("%s%s", i ? "," : "", x->tags[i]);
	printf("]\n");
}

static int print_history(void *ctx, const struct meta_history *h)
{
	(void)ctx;
	char at[32], pushed[32];
	fmt_time(h->at, at, sizeof(at));
	fmt_time(h->pushed_at, pushed, sizeof(pushed));
	printf("%s %s %s/%s/%s %s pushed %s rule %d tags %s\n", at, h->action, h->account,
	       h->region, h->repo_name, h->digest, pushed, h->rule_priority,
	       h->tags ? h->tags : "[]");
	return 0;
}

int cmd_lifecycle(int argc, char **argv)
{
	struct tool_args a;
	int rc = parse_args("lifecycle", argc, argv,
	                    "data-dir repo account-id region dry-run history log-level", &a);
	if (rc)
		return rc;
	struct meta *m = NULL;
	struct core *c = open_core("lifecycle", a.data_dir, &m);
	if (!c)
		return 1;
	struct berr err;
	err_clear(&err);
	enum berr_code ec;
	int64_t n = 0;
	struct registry_id reg = registry_id_of(a.account, a.region);
	if (a.history) {
		ec = m->ops->history_list(m, a.repo ? reg.account : NULL, reg.region, a.repo, 1000,
		                          print_history, NULL, &err);
	} else if (a.repo) {
		ec = core_lifecycle_apply(c, m, 0, &reg, a.repo, a.dry_run, clock_now_ms(),
		                          print_action, &a.dry_run, &n, &err);
	} else {
		ec = core_lifecycle_apply_all(c, m, a.dry_run, clock_now_ms(), print_action,
		                              &a.dry_run, &n, &err);
	}
	if (ec != BERR_OK) {
		fprintf(stderr, "berth lifecycle: %s\n", err.msg);
		rc = 1;
	} else if (!a.history) {
		printf("lifecycle: %s %" PRId64 " image(s)\n",
		       a.dry_run ? "would act on" : "acted on", n);
	}
	close_core(c, m);
	return rc;
}

static void print_line(void *ctx, const char *line)
{
	(void)ctx;
	printf("%s\n", line);
}

int cmd_fsck(int argc, char **argv)
{
	struct tool_args a;
	int rc = parse_args("fsck", argc, argv, "data-dir repair log-level", &a);
	if (rc)
		return rc;
	struct meta *m = NULL;
	struct core *c = open_core("fsck", a.data_dir, &m);
	if (!c)
		return 1;
	struct core_fsck_stats st;
	struct berr err;
	err_clear(&err);
	if (core_fsck(c, m, a.repair, print_line, NULL, &st, &err) != BERR_OK) {
		fprintf(stderr, "berth fsck: %s\n", err.msg);
		rc = 1;
	} else {
		int64_t problems =
		    st.corrupt + st.missing_files + st.missing_refs + st.orphan_files;
		printf("fsck: %" PRId64 " blobs (%" PRId64 " bytes) checked; %" PRId64
		       " corrupt, %" PRId64 " missing files, %" PRId64
		       " missing references, %" PRId64 " orphan files; %" PRId64 " repaired\n",
		       st.blobs_checked, st.bytes_checked, st.corrupt, st.missing_files,
		       st.missing_refs, st.orphan_files, st.repaired);
		rc = problems > st.repaired ? 1 : 0;
	}
	close_core(c, m);
	return rc;
}
