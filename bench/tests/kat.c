/*
 * Known-answer programs for the launcher's tests:
 *   kat none            exits at once
 *   kat sleep MS        sleeps MS milliseconds
 *   kat alloc MIB       touches MIB MiB itself
 *   kat child MIB       a child it waits for touches MIB MiB
 *   kat orphan MIB      a grandchild, orphaned at once, touches MIB MiB and exits; this
 *                       process waits 300 ms so the orphan has exited before it does
 *   kat exit CODE       exits with CODE
 *   kat kill            kills itself with SIGKILL
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int touch(long mib)
{
	size_t n = (size_t)mib << 20;
	volatile char *buf = malloc(n);

	if (!buf)
		return 1;
	memset((char *)buf, 1, n);
	return buf[n - 1] != 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0)
		;
}

int main(int argc, char **argv)
{
	long arg = argc > 2 ? atol(argv[2]) : 0;
	pid_t pid;

	if (argc < 2)
		return 2;
	if (!strcmp(argv[1], "none"))
		return 0;
	if (!strcmp(argv[1], "sleep")) {
		sleep_ms(arg);
		return 0;
	}
	if (!strcmp(argv[1], "alloc"))
		return touch(arg);
	if (!strcmp(argv[1], "child")) {
		int status;

		pid = fork();
		if (pid == 0)
			_exit(touch(arg));
		waitpid(pid, &status, 0);
		return WEXITSTATUS(status);
	}
	if (!strcmp(argv[1], "orphan")) {
		pid = fork();
		if (pid == 0) {
			if (fork() == 0)
				_exit(touch(arg));
			_exit(0); /* orphans the grandchild */
		}
		waitpid(pid, NULL, 0);
		sleep_ms(300);
		return 0;
	}
	if (!strcmp(argv[1], "exit"))
		return (int)arg;
	if (!strcmp(argv[1], "kill"))
		kill(getpid(), SIGKILL);
	return 2;
}
