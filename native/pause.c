/*
 * berth-pause: the process that holds a pod sandbox's namespaces, as
 * Kubernetes' pause container does. It sleeps in sigwait, reaps any child
 * re-parented to it (it is pid 1 of the pod's pid namespace when the pod
 * has one, a subreaper otherwise) and exits 0 on SIGINT or SIGTERM. Linked
 * statically: the sandbox rootfs holds this binary and nothing else.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	sigset_t all;
	int sig;
	if (getpid() != 1)
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		if (sigwait(&all, &sig) != 0)
			continue;
		if (sig == SIGINT || sig == SIGTERM)
			return 0;
		if (sig == SIGCHLD)
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
	}
}
