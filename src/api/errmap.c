/* errmap.c - the one place where berth error codes become wire errors (via err_codes.def):
 * ECR {"__type","message"} and OCI {"errors":[{"code","message","detail"}]}. */
#include "../base/feat.h"

#include "api.h"

#include "../base/log.h"
#include "../base/util.h"

#include <pthread.h>
#include <string.h>

#define NO_SPACE_MSG                                                                               \
	"The registry's storage is full; nothing of this request was stored. Retry once space "    \
	"is freed."

void api_ecr_error(struct api_resp *r, const struct berr *e, json_t *extra)
{
	enum berr_code c = e->code == BERR_OK ? BERR_INTERNAL : e->code;
	r->status = err_ecr_status(c);
	const char *type = err_ecr_type(c);
	/* Internal details (paths, SQLite messages) are logged, never sent. */
	const char *msg = c == BERR_NO_SPACE ? NO_SPACE_MSG
	                  : r->status >= 500 ? "An internal error occurred in berth."
	                                     : e->msg;
	json_t *body = json_pack("{s:s, s:s}", "__type", type, "message", msg);
	if (extra)
		json_object_update(body, extra);
	api_json_body(r, body);
	json_decref(body);
	api_resp_header(r, "Content-Type", "application/x-amz-json-1.1");
	api_resp_header(r, "x-amzn-ErrorType", type);
}

void api_oci_error(struct api_resp *r, const struct berr *e)
{
	enum berr_code c = e->code == BERR_OK ? BERR_INTERNAL : e->code;
	r->status = err_oci_status(c);
	const char *msg = c == BERR_NO_SPACE ? NO_SPACE_MSG
	                  : r->status >= 500 ? "internal error"
	                                     : e->msg;
	json_t *body = json_pack("{s:[{s:s, s:s, s:o}]}", "errors", "code", err_oci_code(c),
	                         "message", msg, "detail", json_object());
	api_json_body(r, body);
	json_decref(body);
	api_resp_header(r, "Content-Type", "application/json");
}

#define NO_SPACE_LOG_MS 10000

void api_log_failure(const char *request_id, const char *what, const struct berr *e)
{
	if (e->code != BERR_NO_SPACE) {
		log_error("%s %s: %s (%s)", request_id, what, e->msg, err_name(e->code));
		return;
	}
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static int64_t next_ms;
	static long long refused;
	int64_t now = clock_mono_ms();
	pthread_mutex_lock(&mu);
	long long n = ++refused;
	bool say = now >= next_ms;
	if (say) {
		next_ms = now + NO_SPACE_LOG_MS;
		refused = 0;
	}
	pthread_mutex_unlock(&mu);
	if (say)
		log_warn("storage full: %lld request(s) refused in the last %ds; %s %s: %s", n,
		         NO_SPACE_LOG_MS / 1000, request_id, what, e->msg);
}
