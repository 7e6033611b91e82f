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

/*
 * Attach clients and the process's stdin (monitor-attach.c). Output goes to
 * every client through a bounded buffer (a client that falls too far behind
 * is disconnected); input from clients goes to stdin through one bounded
 * buffer, and clients are not read while it is full.
 */
#define ATTACH_MAX_CLIENTS 32
struct pollfd;
/* backpressure: hold output while a client is behind (exec sessions) instead of disconnecting it. */
void attach_init(int tty, int stdin_once, int backpressure);
/* Whether the process's output should not be read now (a client behind that output waits for). */
int attach_output_held(void);
/* The process's stdin: a pipe's write end, or the pty master (is_pty); -1 for none. */
void attach_set_stdin(int fd, int is_pty);
/* Close stdin once the buffered input is written ("close-stdin"). */
void attach_close_stdin(void);
/* wants_all: a client whose output is held while it is behind, as an exec session's always is. */
void attach_accept(int listen_fd, int wants_all);
void attach_broadcast(int stream, const char *data, size_t n);
/* Add the attach fds to a poll set at index n; returns the new count. */
int attach_poll_add(struct pollfd *p, int n);
/* Handle the events of the fds attach_poll_add added. */
void attach_poll_handle(const struct pollfd *p);
/* At exit: give clients up to two seconds to take their output, then disconnect them. */
void attach_finish(void);

#endif
