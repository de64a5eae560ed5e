"""The parent/child channel of container setup (sync.Channel): JSON lines both ways, a
child's error or death as the one-line error of the parent. Two processes are not
needed: both ends live in this process."""

import os
import re
import socket

import pytest

from slruntime import protocol
from slruntime.errors import SlrError
from slruntime.sync import Channel

pytestmark = pytest.mark.unit


@pytest.fixture
def ends():
    runtime, child = Channel.pair()
    yield runtime, child
    runtime.close()
    child.close()


def test_messages_arrive_in_order_both_ways(ends):
    runtime, child = ends
    child.send({"type": "pid", "pid": 42})
    child.send({"type": "ready"})
    assert runtime.expect("pid") == {"type": "pid", "pid": 42}
    assert runtime.recv() == {"type": "ready"}
    runtime.send({"type": "go"})
    assert child.expect("go") == {"type": "go"}


def test_the_childs_error_is_the_parents_one_line_error(ends):
    runtime, child = ends
    child.fail("cwd /nope: No such file or directory")
    with pytest.raises(SlrError) as raised:
        runtime.recv()
    assert str(raised.value) == "cwd /nope: No such file or directory"


def test_an_unexpected_message_is_named(ends):
    runtime, child = ends
    child.send({"type": "hooks"})
    with pytest.raises(SlrError) as raised:
        runtime.expect("pid")
    assert str(raised.value) == "the container's init: expected pid, got hooks"


def test_a_child_that_dies_silently_is_named(ends):
    runtime, child = ends
    child.close()
    with pytest.raises(SlrError) as raised:
        runtime.recv()
    assert str(raised.value) == "the container's init exited during setup"


def test_sending_to_a_dead_child_reports_its_last_word(ends):
    runtime, child = ends
    child.fail("seccomp: invalid program")
    child.close()
    with pytest.raises(SlrError) as raised:
        runtime.send({"type": "go"})
    assert str(raised.value) == "seccomp: invalid program"


def test_a_message_split_across_reads_is_reassembled():
    """Over a socketpair (the pool's socket is one) a line may come in pieces."""
    ours, theirs = socket.socketpair()
    channel = Channel(ours.fileno(), ours.fileno())
    try:
        theirs.sendall(b'{"type": "pi')
        theirs.sendall(b'd", "pid": 7}\n{"type": "ok"}\n')
        assert channel.expect("pid")["pid"] == 7
        assert channel.expect("ok") == {"type": "ok"}
    finally:
        ours.close()
        theirs.close()


def test_every_setup_message_is_a_protocol_name_both_sent_and_expected():
    # protocol.py is the written protocol: each message type is one of its names, sent
    # by one side and expected by the other; no message type is spelt out elsewhere.
    names = {name: value for name, value in vars(protocol).items() if name.isupper()}
    assert names and len(set(names.values())) == len(names)
    package = os.path.dirname(protocol.__file__)
    source = ""
    for directory, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py") and name != "protocol.py":
                with open(os.path.join(directory, name), encoding="utf-8") as stream:
                    source += stream.read()
    for name in names:
        assert f'"type": protocol.{name}' in source, f"{name} is never sent"
        assert re.search(rf"expect\(protocol\.{name}\b", source), f"{name} is never expected"
    assert not re.search(r'(send\(\{"type": "|expect\(")', source)
