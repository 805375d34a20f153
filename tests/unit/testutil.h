/* testutil.h - temp directories for the unit tests (each test binary includes it once). */
#ifndef BERTH_TESTUTIL_H
#define BERTH_TESTUTIL_H

#include "base/mem.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static int testutil_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Removes a directory tree (best effort). */
static inline void test_rm_rf(const char *path)
{
	nftw(path, testutil_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* New empty directory $TMPDIR/berth-test-<what>-XXXXXX (free + test_rm_rf by the caller),
 * NULL on failure. */
static inline char *test_mkdtemp(const char *what)
{
	const char *base = getenv("TMPDIR");
	char *dir = xasprintf("%s/berth-test-%s-XXXXXX", base && *base ? base : "/tmp", what);
	if (!mkdtemp(dir)) {
		free(dir);
		return NULL;
	}
	return dir;
}

#endif
