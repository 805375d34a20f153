/* util.c - see util.h. */
#include "feat.h"

#include "util.h"
#include "mem.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

int64_t clock_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rand_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			abort();
		}
		p += r;
		n -= (size_t)r;
	}
}

/* Random bytes for uuid_v4, drawn from getrandom a page at a time per thread (one request id
 * per request: a system call and snprintf each were ~1 % of a small request's CPU). */
static void uuid_bytes(unsigned char b[16])
{
	static _Thread_local unsigned char pool[4096];
	static _Thread_local size_t left;
	if (left < 16) {
		rand_bytes(pool, sizeof(pool));
		left = sizeof(pool);
	}
	left -= 16;
	memcpy(b, pool + left, 16);
	memset(pool + left, 0, 16); /* handed out once */
}

void uuid_v4(char out[UUID_STR_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	uuid_bytes(b);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
}

bool uuid_is_valid(const char *s)
{
	static const int groups[] = {8, 4, 4, 4, 12};
	for (int g = 0; g < 5; g++) {
		for (int i = 0; i < groups[g]; i++, s++)
			if (!isxdigit((unsigned char)*s))
				return false;
		if (g < 4 && *s++ != '-')
			return false;
	}
	return *s == '\0';
}

void thread_stop(pthread_t t, pthread_mutex_t *mu, pthread_cond_t *cv, bool *stop)
{
	pthread_mutex_lock(mu);
	*stop = true;
	pthread_cond_signal(cv);
	pthread_mutex_unlock(mu);
	pthread_join(t, NULL);
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_glob_match(const char *p, const char *s)
{
	/* Iterative matcher with single backtrack point: linear in practice, no recursion depth
	 * for hostile patterns. */
	const char *star = NULL, *retry = NULL;
	while (*s) {
		if (*p == '*') {
			star = p++;
			retry = s;
		} else if (*p == *s) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++retry;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int64_t duration_parse_ms(const char *s)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (errno || v < 0 || v > 100LL * 365 * 86400)
		return -1;
	int64_t mult = 1000;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else if (strcmp(end, "d") == 0)
		mult = 86400000;
	else
		return -1;
	return (int64_t)v * mult;
}

int64_t size_parse_bytes(const char *s)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (errno || v < 0)
		return -1;
	static const char units[] = "KMGT";
	int shift = 0;
	if (*end) {
		const char *u = strchr(units, toupper((unsigned char)*end));
		if (!u)
			return -1;
		shift = 10 * (int)(u - units + 1);
		end++;
		if (strcmp(end, "") != 0 && strcmp(end, "B") != 0 && strcmp(end, "iB") != 0)
			return -1;
	}
	if (v > (1LL << (62 - shift)))
		return -1;
	return (int64_t)v << shift;
}

/* mkdir that accepts an existing directory (but not an existing file). */
static int mkdir_one(const char *p)
{
	if (mkdir(p, 0755) == 0)
		return 0;
	struct stat sb;
	if (errno == EEXIST && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
		return 0;
	if (errno == EEXIST)
		errno = ENOTDIR;
	return -1;
}

enum berr_code fs_mkdirs(const char *path, struct berr *err)
{
	if (!*path)
		return err_set(err, BERR_INVALID, "empty directory path");
	char *p = xstrdup(path);
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir_one(p) < 0) {
			int e = errno;
			free(p);
			return err_sys(err, BERR_IO, e, "mkdir %s: %s", path, strerror(e));
		}
		*q = '/';
	}
	if (mkdir_one(p) < 0) {
		int e = errno;
		free(p);
		return err_sys(err, BERR_IO, e, "mkdir %s: %s", path, strerror(e));
	}
	free(p);
	return BERR_OK;
}

enum berr_code fs_fsync_dir(const char *dir, struct berr *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, BERR_IO, errno, "open dir %s: %s", dir, strerror(errno));
	if (fsync(fd) < 0) {
		int e = errno;
		close(fd);
		return err_sys(err, BERR_IO, e, "fsync dir %s: %s", dir, strerror(e));
	}
	close(fd);
	return BERR_OK;
}

enum berr_code fs_write_atomic(const char *path, const void *data, size_t len, int mode,
                               struct berr *err)
{
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	char *dcopy = xstrdup(path);
	enum berr_code rc = BERR_OK;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		rc = err_sys(err, BERR_IO, errno, "create %s: %s", tmp, strerror(errno));
		goto out;
	}
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = err_sys(err, BERR_IO, errno, "write %s: %s", tmp, strerror(errno));
			goto out;
		}
		p += w;
		left -= (size_t)w;
	}
	if (fsync(fd) < 0) {
		rc = err_sys(err, BERR_IO, errno, "fsync %s: %s", tmp, strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = err_sys(err, BERR_IO, errno, "rename %s: %s", path, strerror(errno));
		goto out;
	}
	rc = fs_fsync_dir(dirname(dcopy), err);
out:
	if (fd >= 0)
		close(fd);
	if (rc != BERR_OK)
		unlink(tmp);
	free(tmp);
	free(dcopy);
	return rc;
}

enum berr_code fs_space(const char *path, int64_t *avail, int64_t *total, struct berr *err)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return err_sys(err, BERR_IO, errno, "statvfs %s: %s", path, strerror(errno));
	*avail = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
	*total = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
	return BERR_OK;
}

enum berr_code fs_read_all(const char *path, size_t limit, char **out, size_t *len,
                           struct berr *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return err_set(err, BERR_NOT_FOUND, "%s does not exist", path);
		return err_sys(err, BERR_IO, errno, "open %s: %s", path, strerror(errno));
	}
	size_t cap = 4096, n = 0;
	char *p = xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			if (cap > limit) {
				free(p);
				close(fd);
				return err_set(err, BERR_TOO_LARGE, "%s is larger than %zu bytes",
				               path, limit);
			}
			cap *= 2;
			p = xrealloc(p, cap + 1);
		}
		ssize_t r = read(fd, p + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(p);
			close(fd);
			return err_sys(err, BERR_IO, e, "read %s: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (n > limit) {
		free(p);
		return err_set(err, BERR_TOO_LARGE, "%s is larger than %zu bytes", path, limit);
	}
	p[n] = '\0';
	*out = p;
	if (len)
		*len = n;
	return BERR_OK;
}

static char boot_id[40];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

static void read_boot_id(void)
{
	char *data = NULL;
	size_t len = 0;
	struct berr e;
	if (fs_read_all("/proc/sys/kernel/random/boot_id", 128, &data, &len, &e) == BERR_OK) {
		while (len && (data[len - 1] == '\n' || data[len - 1] == ' '))
			len--;
		if (len == 36)
			memcpy(boot_id, data, 36);
	}
	free(data);
}

const char *sys_boot_id(void)
{
	pthread_once(&boot_once, read_boot_id);
	return boot_id;
}
