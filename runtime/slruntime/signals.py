"""Signals the foreground commands (`run`, `exec`, `pool run`) pass on to the container's
process instead of dying of them. Kept apart from the lifecycle code so that the light
`pool run` client imports only this."""

import os

FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT")


def forward_signals(pid):
    import _signal

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for name in FORWARDED_SIGNALS:
        _signal.signal(getattr(_signal, name), forward)


def reset_for_exec():
    """Every signal's disposition back to the default and none blocked, as a process
    started by runc or crun finds them. execve resets caught signals only: the
    interpreter ignores SIGPIPE and SIGXFSZ (so `yes | head -1` would print "Broken
    pipe" errors in the container), and the caller may have ignored or blocked others,
    the C library's own real-time signals included."""
    import _signal

    from slruntime import libc

    libc.reset_signal_dispositions()
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
