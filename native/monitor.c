/*
 * berth-monitor: the per-container (or per-exec) monitor.
 *
 * berthd starts one monitor per container and one per exec session. The
 * monitor detaches (fork + setsid) so it outlives berthd, becomes a child
 * subreaper and runs the OCI runtime (`create`, or `exec -d` on a "start"
 * control command) so the container process ends up as ITS child. It holds
 * the container's stdio (pipes, or the pty master that the runtime sends over
 * the console socket), writes the log file, serves attach clients and
 * control commands, and records the exit status. Design after conmon, written
 * small: one poll loop, static buffers, no threads.
 *
 * Files in --dir (the task directory):
 *   monitor.pid   the monitor's pid
 *   pid           the container (or exec) process pid, written by the runtime
 *   status        {"ok":true,"pid":N} once created / started, or
 *                 {"ok":false,"exitCode":127,"error":"..."} when the runtime failed
 *   exit          {"exitCode":N,"signal":S,"pid":P,"finishedAt":"..."} (atomic rename)
 *   attach.sock   attach: output to every client (non-tty: docker's 8-byte
 *                 stream header per chunk), input from any client to stdin;
 *                 with --stdin-once, a client that sent input and then shuts
 *                 down its side closes stdin (output-only clients never do)
 *   attach-all.sock  the same, for a client whose output is held while it is
 *                 behind rather than the client disconnected (see below)
 *   ctl.sock      control, one command per line, one JSON reply per line:
 *                 "resize ROWS COLS", "close-stdin", "reopen-log",
 *                 "start" (exec sessions)
 *   runtime.log   the runtime's own log (JSON lines), read for error messages
 * The status JSON is also written to --sync-fd, which is then closed, so the
 * caller learns the result of create without polling.
 *
 * A container's output never blocks on an attach.sock client: each has a
 * bounded buffer and is disconnected when it cannot keep up. An exec
 * session's output waits for a client that is behind instead (docker exec
 * loses nothing to a slow reader), and the session has no log to starve.
 * So does a container's for an attach-all.sock client: the client that
 * runs it in the foreground and wants every byte, as docker's attach
 * holds the container for a slow reader.
 */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_CTL 8

static struct {
	const char *dir, *runtime, *root, *bundle, *id, *process;
	int exec, tty, stdin, stdin_once, rows, cols, sync_fd;
	struct log_opts log;
} o = { .sync_fd = -1 };

struct ctl {
	int fd;
	char buf[256];
	size_t len;
};

static struct ctl ctls[MAX_CTL];
static int sigfd = -1, attach_lfd = -1, attach_all_lfd = -1, ctl_lfd = -1, console_lfd = -1, dirfd_keep = -1;
static int out_fd = -1, err_fd = -1, master = -1;
static pid_t child_pid;
static int started, exited, exit_code, exit_signal;
static char readbuf[16384];

static void die(const char *what)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "berth-monitor: %s: %s\n", what, strerror(errno));
	int fd = open("monitor.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		write_all(fd, msg, strlen(msg));
		close(fd);
	}
	if (o.sync_fd >= 0) {
		snprintf(msg, sizeof(msg), "{\"ok\":false,\"exitCode\":125,\"error\":\"berth-monitor: %s: %s\"}\n", what,
			 strerror(errno));
		write_all(o.sync_fd, msg, strlen(msg));
	}
	exit(1);
}

static void write_file_atomic(const char *name, const char *data)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die("open state file");
	/* No fsync: the state directory is on tmpfs (/run) and does not outlive a reboot anyway. */
	if (write_all(fd, data, strlen(data)) < 0)
		die("write state file");
	close(fd);
	if (rename(tmp, name) < 0)
		die("rename state file");
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int listen_unix(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	/* Relative to the task directory (our cwd): absolute paths may exceed sun_path. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
	unlink(name);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(name, 0600) < 0 || listen(fd, 16) < 0)
		die(name);
	return fd;
}

/* Copy the JSON string token of the last error "msg" in runtime.log into out. */
static int runtime_error(char *out, size_t n)
{
	static char buf[65536];
	int found = 0;
	int fd = open("runtime.log", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	off_t size = lseek(fd, 0, SEEK_END);
	off_t from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
	ssize_t r = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = 0;
	for (char *line = buf; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *m = strstr(line, "\"msg\":\"");
		if (m && (strstr(line, "\"level\":\"error\"") || strstr(line, "\"level\":\"fatal\""))) {
			char *s = m + 6, *e = s + 1;
			while (*e && *e != '"')
				e += (*e == '\\' && e[1]) ? 2 : 1;
			if (*e == '"' && (size_t)(e - s + 2) < n) {
				memcpy(out, s, (size_t)(e - s + 1));
				out[e - s + 1] = 0;
				found = 1;
			}
		}
		line = next;
	}
	return found;
}

/* Exit status of a runtime failure, by docker's rules: 127 not found, 126 not executable. */
static int classify(const char *err)
{
	if (strstr(err, "executable file not found") || (strstr(err, "exec: ") && strstr(err, "no such file or directory")))
		return 127;
	if (strstr(err, "exec: ") && strstr(err, "permission denied"))
		return 126;
	return 128;
}

static int run_runtime(char *const argv[], int in, int out, int err)
{
	sigset_t all;
	int st;
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(125);
		close_range(3, ~0U, 0);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return st;
}

static int recv_console(void)
{
	struct pollfd p = { .fd = console_lfd, .events = POLLIN };
	char data[256];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	if (poll(&p, 1, 10000) <= 0)
		return -1;
	int c = accept4(console_lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return -1;
	p.fd = c;
	poll(&p, 1, 10000);
	ssize_t r = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
	close(c);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	if (r < 0 || cm == NULL || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static void apply_winsize(int rows, int cols)
{
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
	if (master >= 0 && rows > 0 && cols > 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

/*
 * Run the runtime's create (or exec -d) and report the result. Returns 0 when
 * the process exists; on failure the status and exit files carry the error.
 */
static int launch(char *status, size_t status_len)
{
	char root_arg[PATH_MAX], log_arg[PATH_MAX], pid_arg[PATH_MAX], console[128], err[4096];
	char *argv[24];
	int n = 0, in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	snprintf(root_arg, sizeof(root_arg), "%s", o.root);
	snprintf(log_arg, sizeof(log_arg), "%s/runtime.log", o.dir);
	snprintf(pid_arg, sizeof(pid_arg), "%s/pid", o.dir);
	argv[n++] = (char *)o.runtime;
	argv[n++] = "--root";
	argv[n++] = root_arg;
	argv[n++] = "--log";
	argv[n++] = log_arg;
	argv[n++] = "--log-format";
	argv[n++] = "json";
	if (o.exec) {
		argv[n++] = "exec";
		argv[n++] = "-d";
		argv[n++] = "--process";
		argv[n++] = (char *)o.process;
	} else {
		argv[n++] = "create";
		argv[n++] = "--bundle";
		argv[n++] = (char *)o.bundle;
	}
	argv[n++] = "--pid-file";
	argv[n++] = pid_arg;
	if (o.tty) {
		/* The runtime may chdir and sun_path is short: reach our directory through our fd. */
		snprintf(console, sizeof(console), "/proc/%d/fd/%d/console.sock", getpid(), dirfd_keep);
		argv[n++] = "--console-socket";
		argv[n++] = console;
	}
	argv[n++] = (char *)o.id;
	argv[n] = NULL;

	int rin = devnull, rout = devnull, rerr = devnull;
	if (!o.tty) {
		if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
			die("pipe");
		rout = out[1];
		rerr = errp[1];
		if (o.stdin) {
			if (pipe2(in, O_CLOEXEC) < 0)
				die("pipe");
			rin = in[0];
		}
	}
	unlink("runtime.log");
	int st = run_runtime(argv, rin, rout, rerr);
	close(devnull);
	if (!o.tty) {
		close(out[1]);
		close(errp[1]);
		if (o.stdin)
			close(in[0]);
		out_fd = out[0];
		err_fd = errp[0];
		attach_set_stdin(in[1], 0);
	}
	if (st != 0) {
		if (!runtime_error(err, sizeof(err)))
			snprintf(err, sizeof(err), "\"%s %s exited with status %d\"", o.runtime, o.exec ? "exec" : "create",
				 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		exit_code = classify(err);
		snprintf(status, status_len, "{\"ok\":false,\"exitCode\":%d,\"error\":%s}\n", exit_code, err);
		return -1;
	}
	if (o.tty) {
		master = recv_console();
		if (master < 0) {
			exit_code = 125;
			snprintf(status, status_len, "{\"ok\":false,\"exitCode\":125,\"error\":\"no console from the runtime\"}\n");
			return -1;
		}
		unlink("console.sock");
		apply_winsize(o.rows, o.cols);
		out_fd = master;
		attach_set_stdin(o.stdin ? master : -1, 1);
	}
	if (out_fd >= 0)
		set_nonblock(out_fd);
	if (err_fd >= 0)
		set_nonblock(err_fd);
	char pidbuf[32] = { 0 };
	int pf = open("pid", O_RDONLY | O_CLOEXEC);
	if (pf < 0 || read(pf, pidbuf, sizeof(pidbuf) - 1) <= 0)
		die("read pid file");
	close(pf);
	child_pid = (pid_t)atoi(pidbuf);
	started = 1;
	snprintf(status, status_len, "{\"ok\":true,\"pid\":%d}\n", child_pid);
	return 0;
}

static void report(const char *status)
{
	write_file_atomic("status", status);
	if (o.sync_fd >= 0) {
		write_all(o.sync_fd, status, strlen(status));
		close(o.sync_fd);
		o.sync_fd = -1;
	}
}

static void write_exit(const char *error)
{
	char buf[8192], ts[48];
	now_rfc3339(ts, sizeof(ts));
	snprintf(buf, sizeof(buf), "{\"exitCode\":%d,\"signal\":%d,\"pid\":%d,\"finishedAt\":\"%s\"%s%s}\n", exit_code,
		 exit_signal, child_pid, ts, error ? ",\"error\":" : "", error ? error : "");
	write_file_atomic("exit", buf);
}

/* Returns 0 at EOF or on error (the fd is then done), 1 if it may have more. */
static int pump(int *fd, int stream)
{
	for (int rounds = 0; rounds < 4; rounds++) {
		ssize_t r = read(*fd, readbuf, sizeof(readbuf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 1;
		if (r <= 0) {
			if (*fd != master)
				close(*fd);
			*fd = -1;
			return 0;
		}
		log_feed(stream, readbuf, (size_t)r);
		attach_broadcast(stream, readbuf, (size_t)r);
	}
	return 1;
}

static void ctl_reply(struct ctl *c, const char *s)
{
	send(c->fd, s, strlen(s), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void ctl_command(struct ctl *c, char *line)
{
	int rows, cols;
	char status[8192];
	if (sscanf(line, "resize %d %d", &rows, &cols) == 2) {
		apply_winsize(rows, cols);
		ctl_reply(c, master >= 0 ? "{\"ok\":true}\n" : "{\"ok\":false,\"error\":\"not a terminal\"}\n");
	} else if (strcmp(line, "close-stdin") == 0) {
		attach_close_stdin();
		ctl_reply(c, "{\"ok\":true}\n");
	} else if (strcmp(line, "reopen-log") == 0) {
		ctl_reply(c, log_reopen() == 0 ? "{\"ok\":true}\n" : "{\"ok\":false,\"error\":\"cannot open the log file\"}\n");
	} else if (strcmp(line, "start") == 0 && o.exec && !started) {
		if (launch(status, sizeof(status)) < 0) {
			write_file_atomic("status", status);
			ctl_reply(c, status);
			char *e = strstr(status, "\"error\":");
			status[strlen(status) - 2] = 0;
			write_exit(e ? e + 8 : NULL);
			exit(0);
		}
		write_file_atomic("status", status);
		ctl_reply(c, status);
	} else {
		ctl_reply(c, "{\"ok\":false,\"error\":\"unknown command\"}\n");
	}
}

static void ctl_read(struct ctl *c)
{
	ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		close(c->fd);
		c->fd = -1;
		c->len = 0;
		return;
	}
	c->len += (size_t)r;
	char *nl;
	while (c->fd >= 0 && (nl = memchr(c->buf, '\n', c->len)) != NULL) {
		*nl = 0;
		ctl_command(c, c->buf);
		size_t used = (size_t)(nl - c->buf) + 1;
		memmove(c->buf, nl + 1, c->len - used);
		c->len -= used;
	}
	if (c->len == sizeof(c->buf) - 1) {
		close(c->fd);
		c->fd = -1;
		c->len = 0;
	}
}

static void reap(void)
{
	struct signalfd_siginfo si;
	int st;
	pid_t pid;
	while (read(sigfd, &si, sizeof(si)) > 0) {
	}
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (started && pid == child_pid) {
			exited = 1;
			if (WIFSIGNALED(st)) {
				exit_signal = WTERMSIG(st);
				exit_code = 128 + exit_signal;
			} else {
				exit_code = WEXITSTATUS(st);
			}
		}
	}
}

static void accept_ctl(void)
{
	int fd;
	while ((fd = accept4(ctl_lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		int placed = 0;
		for (int i = 0; i < MAX_CTL && !placed; i++) {
			if (ctls[i].fd < 0) {
				ctls[i].fd = fd;
				ctls[i].len = 0;
				placed = 1;
			}
		}
		if (!placed)
			close(fd);
	}
}

static void drain(int *fd, int stream)
{
	while (*fd >= 0) {
		ssize_t r = read(*fd, readbuf, sizeof(readbuf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		log_feed(stream, readbuf, (size_t)r);
		attach_broadcast(stream, readbuf, (size_t)r);
	}
}

/* After the process exited: take what is left in the pipes, record the exit, flush clients. */
static void finish(void)
{
	/* anyone already connected gets the remaining output too */
	attach_accept(attach_lfd, 0);
	attach_accept(attach_all_lfd, 1);
	drain(&out_fd, STREAM_STDOUT);
	drain(&err_fd, STREAM_STDERR);
	log_flush();
	log_close();
	write_exit(NULL);
	unlink("attach.sock");
	unlink("attach-all.sock");
	unlink("ctl.sock");
	attach_finish();
	exit(0);
}

static void loop(void)
{
	struct pollfd p[7 + ATTACH_MAX_CLIENTS + MAX_CTL];
	for (;;) {
		if (exited)
			finish();
		int n = 0, i_sig, i_att, i_att_all, i_ctl, i_out = -1, i_err = -1, i_ctls[MAX_CTL];
		i_sig = n;
		p[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		i_att = n;
		p[n++] = (struct pollfd){ .fd = attach_lfd, .events = POLLIN };
		i_att_all = n;
		p[n++] = (struct pollfd){ .fd = attach_all_lfd, .events = POLLIN };
		i_ctl = n;
		p[n++] = (struct pollfd){ .fd = ctl_lfd, .events = POLLIN };
		int held = attach_output_held();
		if (out_fd >= 0 && !held) {
			i_out = n;
			p[n++] = (struct pollfd){ .fd = out_fd, .events = POLLIN };
		}
		if (err_fd >= 0 && !held) {
			i_err = n;
			p[n++] = (struct pollfd){ .fd = err_fd, .events = POLLIN };
		}
		n = attach_poll_add(p, n);
		for (int i = 0; i < MAX_CTL; i++) {
			i_ctls[i] = -1;
			if (ctls[i].fd >= 0) {
				i_ctls[i] = n;
				p[n++] = (struct pollfd){ .fd = ctls[i].fd, .events = POLLIN };
			}
		}
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		/* Accept before pumping output: a client that connected before the
		 * process started (attach, then start) must see its first bytes. */
		if (p[i_att].revents)
			attach_accept(attach_lfd, 0);
		if (p[i_att_all].revents)
			attach_accept(attach_all_lfd, 1);
		if (p[i_sig].revents)
			reap();
		if (i_out >= 0 && p[i_out].revents)
			pump(&out_fd, STREAM_STDOUT);
		if (i_err >= 0 && p[i_err].revents)
			pump(&err_fd, STREAM_STDERR);
		attach_poll_handle(p);
		for (int i = 0; i < MAX_CTL; i++) {
			if (i_ctls[i] >= 0 && ctls[i].fd >= 0 && p[i_ctls[i]].revents)
				ctl_read(&ctls[i]);
		}
		if (p[i_ctl].revents)
			accept_ctl();
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: berth-monitor --dir D --runtime PATH --root R --id ID (--bundle B | --exec --process F)\n"
			"  [--tty] [--stdin] [--stdin-once] [--rows N --cols N] [--sync-fd FD]\n"
			"  [--log-path P] [--log-format json-file|cri] [--log-max-size BYTES] [--log-max-files N]\n");
	exit(2);
}

static void parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, field)                           \
	if (strcmp(a, name) == 0 && v) {             \
		field;                               \
		i++;                                 \
		continue;                            \
	}
		OPT("--dir", o.dir = v);
		OPT("--runtime", o.runtime = v);
		OPT("--root", o.root = v);
		OPT("--bundle", o.bundle = v);
		OPT("--id", o.id = v);
		OPT("--process", o.process = v);
		OPT("--rows", o.rows = atoi(v));
		OPT("--cols", o.cols = atoi(v));
		OPT("--sync-fd", o.sync_fd = atoi(v));
		OPT("--log-path", o.log.path = v);
		OPT("--log-format", o.log.cri = strcmp(v, "cri") == 0);
		OPT("--log-max-size", o.log.max_size = atoll(v));
		OPT("--log-max-files", o.log.max_files = atoi(v));
#undef OPT
		if (strcmp(a, "--exec") == 0)
			o.exec = 1;
		else if (strcmp(a, "--tty") == 0)
			o.tty = 1;
		else if (strcmp(a, "--stdin") == 0)
			o.stdin = 1;
		else if (strcmp(a, "--stdin-once") == 0)
			o.stdin_once = 1;
		else
			usage();
	}
	if (!o.dir || !o.runtime || !o.root || !o.id || (o.exec ? !o.process : !o.bundle))
		usage();
}

int main(int argc, char **argv)
{
	char status[8192], buf[32];
	sigset_t mask;
	parse(argc, argv);

	/* Detach: the caller reaps our parent at once; we live on in a new session. */
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid > 0)
		_exit(0);
	setsid();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("PR_SET_CHILD_SUBREAPER");
	if (chdir(o.dir) < 0)
		die("chdir");
	dirfd_keep = open(".", O_PATH | O_DIRECTORY);
	if (dirfd_keep < 0)
		die("open task directory");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		die("signalfd");
	if (o.sync_fd >= 0)
		fcntl(o.sync_fd, F_SETFD, FD_CLOEXEC);
	attach_init(o.tty, o.stdin_once, o.exec);
	for (int i = 0; i < MAX_CTL; i++)
		ctls[i].fd = -1;

	snprintf(buf, sizeof(buf), "%d\n", getpid());
	write_file_atomic("monitor.pid", buf);
	if (log_open(&o.log) < 0)
		die("open log file");
	attach_lfd = listen_unix("attach.sock");
	attach_all_lfd = listen_unix("attach-all.sock");
	ctl_lfd = listen_unix("ctl.sock");
	if (o.tty)
		console_lfd = listen_unix("console.sock");

	if (o.exec) {
		/* Exec sessions wait for "start" so clients can attach before any output. */
		report("{\"ok\":true,\"pid\":0}\n");
	} else if (launch(status, sizeof(status)) < 0) {
		report(status);
		char *e = strstr(status, "\"error\":");
		status[strlen(status) - 2] = 0;
		write_exit(e ? e + 8 : NULL);
		unlink("attach.sock");
	unlink("attach-all.sock");
		unlink("ctl.sock");
		return 0;
	} else {
		report(status);
	}
	loop();
	return 0;
}
