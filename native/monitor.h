/* Shared declarations of berth-monitor (monitor.c) and its log writer (monitor-log.c). */
#ifndef BERTH_MONITOR_H
#define BERTH_MONITOR_H

#include <stddef.h>

/* Docker splits log lines longer than this into partial records. */
#define LOG_LINE_MAX 16384

#define STREAM_STDOUT 1
#define STREAM_STDERR 2

struct log_opts {
	const char *path; /* NULL: no log */
	int cri;          /* 0: docker json-file, 1: CRI text format */
	long long max_size; /* <= 0: no rotation */
	int max_files;
};

int log_open(const struct log_opts *o);
/* Feed a chunk of container output; records are written per line. */
void log_feed(int stream, const char *data, size_t n);
/* Write out any incomplete lines as partial records (at container exit). */
void log_flush(void);
void log_close(void);
/* Open the log path again (after someone else rotated the file away: the CRI's ReopenContainerLog). */
int log_reopen(void);

/* The current time as RFC 3339 with nanoseconds, UTC ("2016-10-06T00:17:09.669794202Z"). */
void now_rfc3339(char *out, size_t n);

int write_all(int fd, const char *p, size_t n);

#endif
