/* json_fast.h - parse JSON text into a jansson tree, faster than json_loadb for the common
 * documents (ECR requests, manifests). */
#ifndef BERTH_JSON_FAST_H
#define BERTH_JSON_FAST_H

#include <jansson.h>
#include <stddef.h>

/* Same result as json_loadb(buf, len, flags, NULL): the tree of an object or array with nothing
 * but whitespace after it, or NULL. A fast parser builds the tree when the text keeps to what it
 * knows (ASCII, integers, shallow nesting) and defers anything else to jansson, so what is
 * accepted, and how it reads, is jansson's. flags: 0 or JSON_ALLOW_NUL (string values may then
 * hold NUL bytes: read them with json_string_length, never as C strings alone). */
json_t *json_fast_loadb(const char *buf, size_t len, size_t flags);

/* The fast parser alone: NULL where it defers (for tests and the fuzz target). */
json_t *json_fast_only(const char *buf, size_t len, size_t flags);

#endif
