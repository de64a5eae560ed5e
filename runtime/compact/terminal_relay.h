/* `slr pool run -t`: the caller's terminal relayed to the container's pty (terminal_relay.c). */
#ifndef SLR_TERMINAL_RELAY_H
#define SLR_TERMINAL_RELAY_H

#include <sys/ioctl.h>

/* 1 with *size set when fd is a terminal with a known size (rows and columns not 0):
 * the pty's size a request asks for (slruntime.terminal.caller_window_size). */
int slr_window_size(int fd, struct winsize *size);

/* Relays stdin to the pty master and the master to stdout until the pty closes, stdin in
 * raw mode when it is a terminal (restored before returning); closes master. Returns 0,
 * or the errno of a read or write that failed. */
int slr_relay_terminal(int master);

/* The caller's window size onto the pty being relayed, if any: for SIGWINCH
 * (async-signal-safe). */
void slr_copy_window_size(void);

#endif
