/*
 * Container log files in docker's json-file format or the CRI text format.
 *
 * json-file: one JSON object per line, {"log":"...\n","stream":"stdout","time":"..."};
 * a line longer than LOG_LINE_MAX bytes is split into records without the
 * trailing "\n" (docker's partial messages). Strings are escaped as Go's
 * encoding/json does (HTML-safe, invalid UTF-8 replaced by U+FFFD) so
 * docker tooling reads the files unchanged.
 *
 * CRI: "TIMESTAMP STREAM F|P CONTENT\n" as the kubelet reads it (F a full
 * line, P a partial one).
 *
 * Rotation follows docker: once the file has reached max_size, it becomes
 * PATH.1 (PATH.1 becomes PATH.2, ...) keeping max_files files in all; with
 * max_files <= 1 the file is truncated instead.
 */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct log_opts lo;
static int logfd = -1;
static long long logsize;

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
};
static struct line lines[3];

static char out[8192];
static size_t outlen;

int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void now_rfc3339(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

static void out_flush(void)
{
	if (outlen > 0 && logfd >= 0 && write_all(logfd, out, outlen) == 0)
		logsize += (long long)outlen;
	outlen = 0;
}

static void out_put(const char *p, size_t n)
{
	while (n > 0) {
		size_t room = sizeof(out) - outlen;
		if (room == 0) {
			out_flush();
			continue;
		}
		size_t k = n < room ? n : room;
		memcpy(out + outlen, p, k);
		outlen += k;
		p += k;
		n -= k;
	}
}

static void out_str(const char *s)
{
	out_put(s, strlen(s));
}

int log_open(const struct log_opts *o)
{
	struct stat st;
	lo = *o;
	if (lo.path == NULL)
		return 0;
	logfd = open(lo.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (logfd < 0)
		return -1;
	logsize = fstat(logfd, &st) == 0 ? (long long)st.st_size : 0;
	return 0;
}

static void rotate(void)
{
	char from[PATH_MAX], to[PATH_MAX];
	if (lo.max_files <= 1) {
		if (ftruncate(logfd, 0) == 0)
			logsize = 0;
		return;
	}
	close(logfd);
	for (int i = lo.max_files - 1; i >= 1; i--) {
		if (i == 1)
			snprintf(from, sizeof(from), "%s", lo.path);
		else
			snprintf(from, sizeof(from), "%s.%d", lo.path, i - 1);
		snprintf(to, sizeof(to), "%s.%d", lo.path, i);
		rename(from, to);
	}
	logfd = open(lo.path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0640);
	logsize = 0;
}

/* Length of a valid UTF-8 sequence at p (at most n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	unsigned cp = c & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void json_escape(const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		char esc[8];
		if (c >= 0x80) {
			size_t k = utf8_len(p + i, n - i);
			if (k == 0) {
				out_str("\\ufffd");
				i++;
			} else if (k == 3 && c == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
				out_str(p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
				i += 3;
			} else {
				out_put(s + i, k);
				i += k;
			}
			continue;
		}
		switch (c) {
		case '"':
			out_str("\\\"");
			break;
		case '\\':
			out_str("\\\\");
			break;
		case '\n':
			out_str("\\n");
			break;
		case '\r':
			out_str("\\r");
			break;
		case '\t':
			out_str("\\t");
			break;
		default:
			if (c < 0x20 || c == '<' || c == '>' || c == '&') {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				out_put(esc, 6);
			} else {
				out_put(s + i, 1);
			}
		}
		i++;
	}
}

static void emit(int stream, const char *data, size_t n, int partial)
{
	char ts[48];
	const char *name = stream == STREAM_STDERR ? "stderr" : "stdout";
	if (logfd < 0)
		return;
	if (lo.max_size > 0 && logsize >= lo.max_size)
		rotate();
	if (logfd < 0)
		return;
	now_rfc3339(ts, sizeof(ts));
	if (lo.cri) {
		out_str(ts);
		out_put(" ", 1);
		out_str(name);
		out_str(partial ? " P " : " F ");
		out_put(data, n);
		out_put("\n", 1);
	} else {
		out_str("{\"log\":\"");
		json_escape(data, n);
		if (!partial)
			out_str("\\n");
		out_str("\",\"stream\":\"");
		out_str(name);
		out_str("\",\"time\":\"");
		out_str(ts);
		out_str("\"}\n");
	}
	out_flush();
}

void log_feed(int stream, const char *data, size_t n)
{
	struct line *l = &lines[stream == STREAM_STDERR ? STREAM_STDERR : STREAM_STDOUT];
	if (logfd < 0)
		return;
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t upto = nl ? (size_t)(nl - data) : n;
		size_t room = LOG_LINE_MAX - l->len;
		size_t take = upto < room ? upto : room;
		memcpy(l->buf + l->len, data, take);
		l->len += take;
		data += take;
		n -= take;
		if (nl != NULL && take == upto) {
			emit(stream, l->buf, l->len, 0);
			l->len = 0;
			data++;
			n--;
		} else if (l->len == LOG_LINE_MAX) {
			emit(stream, l->buf, l->len, 1);
			l->len = 0;
		}
	}
}

void log_flush(void)
{
	for (int s = STREAM_STDOUT; s <= STREAM_STDERR; s++) {
		if (lines[s].len > 0) {
			emit(s, lines[s].buf, lines[s].len, 1);
			lines[s].len = 0;
		}
	}
}

int log_reopen(void)
{
	struct stat st;
	if (lo.path == NULL)
		return 0;
	out_flush();
	if (logfd >= 0)
		close(logfd);
	logfd = open(lo.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (logfd < 0)
		return -1;
	logsize = fstat(logfd, &st) == 0 ? (long long)st.st_size : 0;
	return 0;
}

void log_close(void)
{
	out_flush();
	if (logfd >= 0)
		close(logfd);
	logfd = -1;
}
