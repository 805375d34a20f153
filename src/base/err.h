/* err.h - the berth error enum plus a message buffer (curl's CURLcode + errbuf).
 *
 * Every fallible function returns enum berr_code (BERR_OK == 0) and takes `struct berr *err` last.
 * err_set() fills the message and returns the code so a failure is one line:
 *     return err_set(err, BERR_REPO_NOT_FOUND, "the repository ... '%s' ...", name);
 * The wire mapping (OCI status/code, ECR status/__type) lives only in err_codes.def. */
#ifndef BERTH_ERR_H
#define BERTH_ERR_H

#include <stdarg.h>
#include <stdint.h>

enum berr_code {
#define X(code, oci_status, oci_code, ecr_status, ecr_type) code,
#include "err_codes.def"
#undef X
	BERR__COUNT
};

struct berr {
	enum berr_code code;
	int sys_errno;
	/* Domain extra: for BERR_LAYER_PART_INVALID / BERR_RANGE_INVALID the last valid byte offset
	 * (-1 for none); callers that do not know leave it at -1. */
	int64_t last_byte;
	char msg[512];
};

/* Resets *e to BERR_OK with an empty message. NULL-safe. */
void err_clear(struct berr *e);
/* Sets code and printf-style message; returns c. e may be NULL (then only c is returned). */
enum berr_code err_set(struct berr *e, enum berr_code c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with errno saved into e->sys_errno. */
enum berr_code err_sys(struct berr *e, enum berr_code c, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Wire mappings from err_codes.def. Never NULL. */
const char *err_name(enum berr_code c);
int err_oci_status(enum berr_code c);
const char *err_oci_code(enum berr_code c);
int err_ecr_status(enum berr_code c);
const char *err_ecr_type(enum berr_code c);

#endif
