/*
 * `slr pool run -t` between the caller's terminal and the container's pty: what
 * slruntime.terminal.ConsoleProxy.copy_until_exit does for the Python client.
 *
 * When stdin is a terminal it is put in raw mode (cfmakeraw, as Python's tty.setraw
 * does since 3.12: the target's Python) and the pty gets its window size; then the
 * pty's output is copied to stdout and stdin to the pty until the pty closes (every
 * slave descriptor gone: the process exited). The terminal's mode is restored on every
 * way out of the relay. SIGWINCH (the caller's terminal resized) copies the new size to
 * the pty, whose kernel side then signals the container's foreground process group.
 */
#define _GNU_SOURCE
#include "terminal_relay.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* The pty master while the relay runs, for the SIGWINCH handler; -1 otherwise. */
static volatile int relayed_master = -1;

int
slr_window_size(int fd, struct winsize *size)
{
    return isatty(fd) && ioctl(fd, TIOCGWINSZ, size) == 0 && size->ws_row > 0 && size->ws_col > 0;
}

void
slr_copy_window_size(void)
{
    int master = relayed_master;
    struct winsize size;
    if (master >= 0 && ioctl(0, TIOCGWINSZ, &size) == 0) {
        ioctl(master, TIOCSWINSZ, &size);
    }
}

/* 0, or the errno of a failed write. */
static int
write_all(int fd, const char *data, size_t length)
{
    while (length > 0) {
        ssize_t written = write(fd, data, length);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written < 0) {
            return errno;
        }
        data += written;
        length -= (size_t)written;
    }
    return 0;
}

/* Copies while the pty is open; 0 when it closed, else the errno of what failed. */
static int
copy(int master)
{
    static char data[65536];
    struct pollfd sources[2] = {{master, POLLIN, 0}, {0, POLLIN, 0}};
    nfds_t count = 2;
    for (;;) {
        if (poll(sources, count, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (sources[0].revents != 0) {
            ssize_t length = read(master, data, sizeof(data));
            if (length < 0 && errno == EINTR) {
                continue;
            }
            if (length <= 0) {
                return 0; /* EIO or end of file: every slave descriptor closed */
            }
            int error = write_all(1, data, (size_t)length);
            if (error != 0) {
                return error;
            }
        }
        if (count == 2 && sources[1].revents != 0) {
            ssize_t length = read(0, data, sizeof(data));
            if (length < 0 && errno == EINTR) {
                continue;
            }
            if (length < 0) {
                return errno;
            }
            if (length == 0) {
                count = 1; /* stdin ended: only the pty's output is left to copy */
                continue;
            }
            int error = write_all(master, data, (size_t)length);
            if (error != 0) {
                return error;
            }
        }
    }
}

int
slr_relay_terminal(int master)
{
    struct termios saved, raw;
    int restore = isatty(0) && tcgetattr(0, &saved) == 0;
    if (restore) {
        raw = saved;
        cfmakeraw(&raw);
        tcsetattr(0, TCSAFLUSH, &raw);
    }
    relayed_master = master;
    if (restore) {
        slr_copy_window_size();
    }
    int error = copy(master);
    relayed_master = -1;
    if (restore) {
        tcsetattr(0, TCSADRAIN, &saved);
    }
    close(master);
    return error;
}
