/* err.c - error buffer helpers and the wire-mapping lookups generated from err_codes.def. */
#include "feat.h"

#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct err_row {
	const char *name;
	int oci_status;
	const char *oci_code;
	int ecr_status;
	const char *ecr_type;
};

static const struct err_row err_rows[BERR__COUNT] = {
#define X(code, oci_status, oci_code, ecr_status, ecr_type)                                        \
	[code] = {#code, oci_status, oci_code, ecr_status, ecr_type},
#include "err_codes.def"
#undef X
};

void err_clear(struct berr *e)
{
	if (!e)
		return;
	e->code = BERR_OK;
	e->sys_errno = 0;
	e->last_byte = -1;
	e->msg[0] = '\0';
}

static enum berr_code err_vset(struct berr *e, enum berr_code c, int errnum, const char *fmt,
                               va_list ap)
{
	if (!e)
		return c;
	e->code = c;
	e->sys_errno = errnum;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	return c;
}

enum berr_code err_set(struct berr *e, enum berr_code c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(e, c, 0, fmt, ap);
	va_end(ap);
	return c;
}

enum berr_code err_sys(struct berr *e, enum berr_code c, int errnum, const char *fmt, ...)
{
	/* A full disk is not a fault of the data: callers and clients may act on it. */
	if (c == BERR_IO && (errnum == ENOSPC || errnum == EDQUOT))
		c = BERR_NO_SPACE;
	va_list ap;
	va_start(ap, fmt);
	err_vset(e, c, errnum, fmt, ap);
	va_end(ap);
	return c;
}

static const struct err_row *row(enum berr_code c)
{
	if ((unsigned)c >= BERR__COUNT)
		c = BERR_INTERNAL;
	return &err_rows[c];
}

const char *err_name(enum berr_code c)
{
	return row(c)->name;
}
int err_oci_status(enum berr_code c)
{
	return row(c)->oci_status;
}
const char *err_oci_code(enum berr_code c)
{
	return row(c)->oci_code;
}
int err_ecr_status(enum berr_code c)
{
	return row(c)->ecr_status;
}
const char *err_ecr_type(enum berr_code c)
{
	return row(c)->ecr_type;
}
