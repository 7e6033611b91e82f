/*
 * berth-nsconnect NETNS PORT: connect to PORT on the loopback of the
 * network namespace at NETNS, for port forwarding into a pod, without
 * berthd ever changing its own namespaces.
 *
 * The connected socket is left at descriptor 3 and "ok" is written to
 * stdout; berthd then takes a copy with pidfd_getfd(2) and closes our
 * stdin, and we exit. A failure is one line on stdout, "error: ...", and
 * exit status 1. As containerd does, 127.0.0.1 is tried first and ::1 when
 * IPv4 fails (a server may listen on one family only).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what, int err)
{
	printf("error: %s: %s\n", what, strerror(err));
	fflush(stdout);
	return 1;
}

static int dial(int family, unsigned port, int *err)
{
	int fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	int rc;
	if (family == AF_INET) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	} else {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
		a.sin6_addr = in6addr_loopback;
		rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	}
	if (rc < 0) {
		*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return fprintf(stderr, "usage: berth-nsconnect NETNS PORT\n"), 2;
	char *end;
	unsigned long port = strtoul(argv[2], &end, 10);
	if (*end || port < 1 || port > 65535)
		return fail("port", EINVAL);
	int ns = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return fail(argv[1], errno);
	if (setns(ns, CLONE_NEWNET) < 0)
		return fail("setns", errno);
	close(ns);
	int err4 = 0, err6 = 0;
	int fd = dial(AF_INET, (unsigned)port, &err4);
	if (fd < 0)
		fd = dial(AF_INET6, (unsigned)port, &err6);
	if (fd < 0) {
		printf("error: connect to localhost:%lu: IPv4: %s, IPv6: %s\n", port, strerror(err4), strerror(err6));
		fflush(stdout);
		return 1;
	}
	if (fd != 3) {
		if (dup2(fd, 3) < 0)
			return fail("dup2", errno);
		close(fd);
	}
	printf("ok\n");
	fflush(stdout);
	/* Hold the socket until berthd has its copy and closes our stdin. */
	char buf[64];
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}
