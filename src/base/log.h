/* log.h - leveled logging to stderr, one line per event. The level is process-wide and set
 * once at start-up; the sink is thread-safe (one write(2) per line). */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Parses "debug|info|warn|error"; returns -1 if unknown. */
int log_level_parse(const char *s);
void log_set_level(enum log_level l);
enum log_level log_get_level(void);
void log_msg(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
