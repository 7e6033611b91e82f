/*
 * berth-init: a tiny init for `--init`. It runs its arguments as a child,
 * forwards the signals it receives to that child, reaps every zombie (it is
 * pid 1 of the container, or a subreaper otherwise) and exits with the
 * child's status: the exit code, or 128+N when the child was killed by
 * signal N. Linked statically so it can be bind-mounted into any image.
 * A leading `--` ends its own options, as tini and catatonit read it: the
 * runtime starts it as `docker-init -- CMD...`, as dockerd does.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	sigset_t all, old;
	int status = 0, sig;
	pid_t child, pid;
	if (argc > 1 && strcmp(argv[1], "--") == 0) {
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: berth-init COMMAND [ARG...]\n");
		return 2;
	}
	if (getpid() != 1)
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	child = fork();
	if (child < 0) {
		perror("berth-init: fork");
		return 1;
	}
	if (child == 0) {
		/* Its own foreground process group, so a terminal's ^C reaches it once (not also via us);
		 * SIGTTOU is still blocked here, which lets tcsetpgrp succeed. */
		setpgid(0, 0);
		if (isatty(0))
			tcsetpgrp(0, getpgrp());
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[1], argv + 1);
		fprintf(stderr, "berth-init: exec %s: %s\n", argv[1], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	for (;;) {
		if (sigwait(&all, &sig) != 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == child)
				return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
	}
}
