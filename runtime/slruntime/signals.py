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
