"""libc.wait_for_hangup, what `slr start` waits with until the init has executed the
container's process: the init holds exec.fifo open close-on-exec, and the write end of
a FIFO reports an error once no reader holds it open."""

import os
import signal
import threading
import time

import pytest

from slruntime import libc

pytestmark = pytest.mark.unit


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "exec.fifo"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    yield reader, writer
    for fd in (reader, writer):
        try:
            os.close(fd)
        except OSError:
            pass


def test_returns_once_the_last_reader_closes(fifo):
    reader, writer = fifo
    closer = threading.Timer(0.2, os.close, (reader,))
    closer.start()
    started = time.monotonic()
    libc.wait_for_hangup(writer)
    closer.join()
    assert time.monotonic() - started >= 0.15  # it waited for the close, not less


def test_a_signal_runs_its_handler_and_the_wait_goes_on(fifo):
    reader, writer = fifo
    caught = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: caught.append(time.monotonic()))
    try:
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        closer = threading.Timer(0.3, os.close, (reader,))
        closer.start()
        libc.wait_for_hangup(writer)
        closer.join()
        returned = time.monotonic()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(caught) == 1 and returned - caught[0] >= 0.15


def test_an_invalid_descriptor_returns_at_once():
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    libc.wait_for_hangup(fd)  # POLLNVAL: nothing to wait for (the select module's poll did the same)
