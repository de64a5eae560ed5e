/*
 * One measured run of one command: fork, exec, wait4, with the clock read around them.
 *
 *   launcher [--memcg DIR] [--hide-cgroup2] [--trace] [--output FILE] -- PROGRAM ARGS...
 *
 * Prints one JSON object on stdout:
 *   wall_ns              CLOCK_MONOTONIC from just before fork() to just after wait4()
 *                        returned the child's exit
 *   exit_status          the child's exit code, or 128 + signal number
 *   waited_maxrss_kib    ru_maxrss from wait4() on the child: the peak RSS of the child
 *                        and of every descendant it waited for itself (what time(1) shows)
 *   tree_maxrss_kib      ru_maxrss of RUSAGE_CHILDREN of this launcher once the child and
 *                        any orphaned descendants (we are their subreaper) were reaped:
 *                        the largest single process of the whole tree
 *   own_hwm_kib          (--trace) VmHWM of the child read at its ptrace exit stop, when
 *                        its memory is still mapped: the peak RSS of that process alone,
 *                        without its descendants; null without --trace
 *   memcg_peak_kib       (--memcg) rise of memory.max_usage_in_bytes of the cgroup v1
 *                        memory cgroup DIR over its usage before the fork: the peak of
 *                        the memory charged to the whole tree at the same time (processes
 *                        summed, kernel memory included); null without --memcg
 *   descendants_running  orphaned descendants still running when the child exited
 *
 * Why a C program: ru_maxrss survives exec, so a child forked from a big parent (a Python
 * driver) reports the parent's pages as its own peak. This launcher is small; its own copy
 * is what a forked child starts with.
 *
 * --hide-cgroup2 runs the command in a private mount namespace without the hybrid
 * cgroup2 mount at /sys/fs/cgroup/unified (crun refuses hybrid hosts otherwise); it is
 * prepared before the clock starts.
 *
 * Exit code: 0 when the run was measured (whatever the child's status), 2 on bad usage
 * or when the measurement itself failed (message on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "launcher: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void usage(void)
{
	fprintf(stderr, "usage: launcher [--memcg DIR] [--hide-cgroup2] [--trace] "
			"[--output FILE] -- PROGRAM [ARGS...]\n");
	exit(2);
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void write_file(const char *dir, const char *name, const char *value)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		die(path);
	close(fd);
}

static long long read_number(const char *dir, const char *name)
{
	char path[4096], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		die(path);
	close(fd);
	buf[n] = '\0';
	return atoll(buf);
}

/* VmHWM of a live (or ptrace-stopped) process in KiB, -1 if unreadable. */
static long vm_hwm_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void hide_cgroup2(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		die("unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die("making / private");
	if (umount2("/sys/fs/cgroup/unified", MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		die("umount /sys/fs/cgroup/unified");
}

/*
 * Waits for the traced child, letting it run through its stops, until it exits.
 * Records VmHWM at the exit stop.
 */
static pid_t wait_traced(pid_t pid, int *status, struct rusage *ru, long *own_hwm)
{
	int options_set = 0;

	for (;;) {
		pid_t got = wait4(pid, status, __WALL, ru);
		int sig = 0;

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return got;
		}
		if (!WIFSTOPPED(*status))
			return got;
		if (!options_set && WSTOPSIG(*status) == SIGTRAP) {
			/* the SIGTRAP that follows exec under PTRACE_TRACEME; with TRACEEXEC, a
			 * later exec (crun re-executes itself) stops as an event, not a signal */
			if (ptrace(PTRACE_SETOPTIONS, pid, 0,
				   PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL) < 0)
				die("ptrace(PTRACE_SETOPTIONS)");
			options_set = 1;
		} else if (*status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
			*own_hwm = vm_hwm_kib(pid);
		} else if (*status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
			/* a later exec: VmHWM restarts with the new image, as ru_maxrss does */
		} else {
			sig = WSTOPSIG(*status); /* a signal for the child: deliver it */
		}
		if (ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig) < 0 && errno != ESRCH)
			die("ptrace(PTRACE_CONT)");
	}
}

int main(int argc, char **argv)
{
	const char *memcg = NULL, *output = "/dev/null";
	int hide = 0, trace = 0, status, i, descendants_running = 0;
	long long base = 0, peak = 0, t0, t1;
	long own_hwm = -1;
	struct rusage ru, children;
	pid_t pid, got;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--memcg") && i + 1 < argc)
			memcg = argv[++i];
		else if (!strcmp(argv[i], "--output") && i + 1 < argc)
			output = argv[++i];
		else if (!strcmp(argv[i], "--hide-cgroup2"))
			hide = 1;
		else if (!strcmp(argv[i], "--trace"))
			trace = 1;
		else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else
			usage();
	}
	if (i >= argc)
		usage();

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("prctl(PR_SET_CHILD_SUBREAPER)");
	if (hide)
		hide_cgroup2();
	if (memcg) {
		char self[32];

		snprintf(self, sizeof(self), "%d", getpid());
		write_file(memcg, "cgroup.procs", self);
		/* Writing resets the peak to the current usage, which is then our base. */
		write_file(memcg, "memory.max_usage_in_bytes", "0");
		base = read_number(memcg, "memory.max_usage_in_bytes");
	}
	fflush(NULL);

	t0 = now_ns();
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY), out = open(output, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		close(in);
		close(out);
		/* Traced, the child stops once after exec, where the parent asks for exit stops. */
		if (trace && ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
			_exit(126);
		execvp(argv[i], argv + i);
		dprintf(2, "launcher: exec %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	if (trace)
		got = wait_traced(pid, &status, &ru, &own_hwm);
	else
		do
			got = wait4(pid, &status, 0, &ru);
		while (got < 0 && errno == EINTR);
	t1 = now_ns();
	if (got < 0)
		die("wait4");

	if (memcg)
		peak = read_number(memcg, "memory.max_usage_in_bytes");
	/* Orphans that already exited were reparented to us: reap them into RUSAGE_CHILDREN. */
	for (;;) {
		got = waitpid(-1, NULL, WNOHANG | __WALL);
		if (got == 0)
			descendants_running = 1;
		if (got <= 0)
			break;
	}
	getrusage(RUSAGE_CHILDREN, &children);

	printf("{\"wall_ns\": %lld, \"exit_status\": %d, \"waited_maxrss_kib\": %ld, "
	       "\"tree_maxrss_kib\": %ld, ",
	       t1 - t0, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
	       ru.ru_maxrss, children.ru_maxrss);
	if (trace && own_hwm >= 0)
		printf("\"own_hwm_kib\": %ld, ", own_hwm);
	else
		printf("\"own_hwm_kib\": null, ");
	if (memcg)
		printf("\"memcg_peak_kib\": %lld, ", (peak - base) / 1024);
	else
		printf("\"memcg_peak_kib\": null, ");
	printf("\"descendants_running\": %s}\n", descendants_running ? "true" : "false");
	return 0;
}
