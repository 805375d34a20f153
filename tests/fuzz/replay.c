/* replay.c - runs LLVMFuzzerTestOneInput over files without libFuzzer, so fuzz corpora (and
 * crash reproducers) replay as plain regression tests under gcc + ASan/UBSan.
 *
 * Usage: replay PATH...   where each PATH is a file or a directory of files (not recursive;
 * dotfiles skipped). Each input is copied into an exact-size heap buffer so overreads past the
 * end are caught. Exit status is non-zero if a path cannot be read; a failing target aborts. */
#include "base/feat.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads path and feeds it to the target; returns 0 on success, -1 if unreadable. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t len = 0, cap = 0;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			uint8_t *p = realloc(data, ncap);
			if (!p) {
				fprintf(stderr, "replay: %s: out of memory\n", path);
				goto out;
			}
			data = p;
			cap = ncap;
		}
		size_t n = fread(data + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		goto out;
	}
	/* Exact-size copy: ASan then flags any read past len. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact)
		goto out;
	if (len)
		memcpy(exact, data, len);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	rc = 0;
out:
	free(data);
	fclose(f);
	return rc;
}

int main(int argc, char **argv)
{
	int failures = 0;
	size_t count = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			failures++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			failures += replay_file(argv[i]) != 0;
			count++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (!d) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			failures++;
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char *path = malloc(strlen(argv[i]) + strlen(de->d_name) + 2);
			if (!path)
				abort();
			sprintf(path, "%s/%s", argv[i], de->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				failures += replay_file(path) != 0;
				count++;
			}
			free(path);
		}
		closedir(d);
	}
	printf("replay: %zu input(s), %d unreadable\n", count, failures);
	return failures ? 1 : 0;
}
