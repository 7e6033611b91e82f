/*
 * Attach clients of berth-monitor: live output to every client (framed with
 * docker's 8-byte stream header unless the process has a tty), and input
 * from any client to the process's stdin. Nothing here may block: a client
 * that cannot keep up is disconnected, and stdin is buffered with a bound.
 * An exec session instead holds its process's output while a client is
 * behind (attach_output_held), as docker exec does: its client is whoever
 * ran it and wants all of it, and there is no log to keep flowing. So does a
 * container for a client that came through attach-all.sock: the one that
 * runs it in the foreground, which would otherwise lose output whenever
 * berthd, reading for it, falls 1 MiB behind a fast writer on a busy host.
 */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENT_BUF_MAX (1024 * 1024)
/* With backpressure, output is not read while a client holds this much; one read more stays below CLIENT_BUF_MAX. */
#define CLIENT_HIGH_WATER (256 * 1024)
#define STDIN_BUF 65536

struct client {
	int fd;
	char *buf;
	size_t len, cap;
	int rd_closed;
	int sent_input; /* only a client that gave input ends it (docker's StdinOnce) */
	int wants_all;  /* output waits for it rather than disconnect it */
};

static struct client clients[ATTACH_MAX_CLIENTS];
static int tty, stdin_once, backpressure;
static int in_fd = -1, in_is_pty;
static char stdin_buf[STDIN_BUF];
static size_t in_len;
static int stdin_close_pending;
static int i_in = -1, i_cli[ATTACH_MAX_CLIENTS];

void attach_init(int tty_, int stdin_once_, int backpressure_)
{
	tty = tty_;
	stdin_once = stdin_once_;
	backpressure = backpressure_;
	for (int i = 0; i < ATTACH_MAX_CLIENTS; i++)
		clients[i].fd = -1;
}

void attach_set_stdin(int fd, int is_pty)
{
	in_fd = fd;
	in_is_pty = is_pty;
	if (fd >= 0 && !is_pty)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void drop_client(struct client *c)
{
	close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void client_flush(struct client *c)
{
	while (c->len > 0) {
		ssize_t w = send(c->fd, c->buf, c->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				drop_client(c);
			return;
		}
		memmove(c->buf, c->buf + w, c->len - (size_t)w);
		c->len -= (size_t)w;
	}
}

static void client_put(struct client *c, const char *p, size_t n)
{
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		while (cap < c->len + n)
			cap *= 2;
		char *nb = cap <= CLIENT_BUF_MAX ? realloc(c->buf, cap) : NULL;
		if (nb == NULL) {
			/* Too slow to keep up: disconnect rather than stall the container. */
			drop_client(c);
			return;
		}
		c->buf = nb;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

void attach_broadcast(int stream, const char *data, size_t n)
{
	unsigned char hdr[8] = { (unsigned char)stream, 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
				 (unsigned char)(n >> 8), (unsigned char)n };
	for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
		struct client *c = &clients[i];
		if (c->fd < 0)
			continue;
		if (!tty)
			client_put(c, (const char *)hdr, sizeof(hdr));
		if (c->fd >= 0)
			client_put(c, data, n);
		if (c->fd >= 0)
			client_flush(c);
	}
}

static void close_stdin(void)
{
	if (in_fd >= 0 && !in_is_pty)
		close(in_fd);
	in_fd = -1;
	in_len = 0;
	stdin_close_pending = 0;
}

static void stdin_flush(void)
{
	while (in_len > 0 && in_fd >= 0) {
		ssize_t w = write(in_fd, stdin_buf, in_len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				close_stdin();
			return;
		}
		memmove(stdin_buf, stdin_buf + w, in_len - (size_t)w);
		in_len -= (size_t)w;
	}
	if (in_len == 0 && stdin_close_pending)
		close_stdin();
}

void attach_close_stdin(void)
{
	if (in_fd >= 0)
		stdin_close_pending = 1;
	stdin_flush();
}

static void client_read(struct client *c)
{
	size_t room = sizeof(stdin_buf) - in_len;
	ssize_t r = recv(c->fd, stdin_buf + in_len, room, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		c->rd_closed = 1;
		if (stdin_once && c->sent_input && in_fd >= 0)
			stdin_close_pending = 1;
		if (r < 0)
			drop_client(c);
		stdin_flush();
		return;
	}
	c->sent_input = 1;
	if (in_fd >= 0 && !stdin_close_pending)
		in_len += (size_t)r;
	stdin_flush();
}

void attach_accept(int listen_fd, int wants_all)
{
	int fd;
	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		int placed = 0;
		for (int i = 0; i < ATTACH_MAX_CLIENTS && !placed; i++) {
			if (clients[i].fd < 0) {
				memset(&clients[i], 0, sizeof(clients[i]));
				clients[i].fd = fd;
				clients[i].wants_all = wants_all;
				placed = 1;
			}
		}
		if (!placed)
			close(fd);
	}
}

int attach_poll_add(struct pollfd *p, int n)
{
	i_in = -1;
	if (in_fd >= 0 && in_len > 0) {
		i_in = n;
		p[n++] = (struct pollfd){ .fd = in_fd, .events = POLLOUT };
	}
	for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
		struct client *c = &clients[i];
		i_cli[i] = -1;
		if (c->fd < 0)
			continue;
		short ev = 0;
		if (!c->rd_closed && in_len < sizeof(stdin_buf))
			ev |= POLLIN;
		if (c->len > 0)
			ev |= POLLOUT;
		i_cli[i] = n;
		p[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
	}
	return n;
}

void attach_poll_handle(const struct pollfd *p)
{
	if (i_in >= 0 && p[i_in].revents)
		stdin_flush();
	for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
		struct client *c = &clients[i];
		if (i_cli[i] < 0 || c->fd < 0 || !p[i_cli[i]].revents)
			continue;
		short re = p[i_cli[i]].revents;
		if ((re & POLLOUT) && c->len > 0)
			client_flush(c);
		if (c->fd >= 0 && (re & (POLLIN | POLLHUP | POLLERR)) && !c->rd_closed)
			client_read(c);
		else if (c->fd >= 0 && (re & (POLLHUP | POLLERR)))
			drop_client(c);
	}
}

int attach_output_held(void)
{
	for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
		const struct client *c = &clients[i];
		if (c->fd >= 0 && (backpressure || c->wants_all) && c->len >= CLIENT_HIGH_WATER)
			return 1;
	}
	return 0;
}

void attach_finish(void)
{
	/* Two seconds without any progress, not in all: a slow reader still gets the last output. */
	for (int waited = 0; waited < 20;) {
		struct pollfd p[ATTACH_MAX_CLIENTS];
		int n = 0;
		for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
			if (clients[i].fd >= 0 && clients[i].len > 0)
				p[n++] = (struct pollfd){ .fd = clients[i].fd, .events = POLLOUT };
		}
		if (n == 0)
			break;
		if (poll(p, (nfds_t)n, 100) <= 0)
			waited++;
		for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
			if (clients[i].fd >= 0 && clients[i].len > 0)
				client_flush(&clients[i]);
		}
	}
	for (int i = 0; i < ATTACH_MAX_CLIENTS; i++) {
		if (clients[i].fd >= 0)
			drop_client(&clients[i]);
	}
}
