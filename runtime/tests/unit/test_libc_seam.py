"""The syscall seam: the fake has every function of slruntime.libc with its parameters,
and code above the seam runs against it without root."""

import errno
import inspect
import os

import pytest

from fake_libc import FakeLibc, seam_functions
from slruntime import libc, namespaces
from slruntime.errors import SlrError

pytestmark = pytest.mark.unit


def test_the_fake_offers_every_libc_function_with_its_parameters():
    fake = FakeLibc()
    real = seam_functions()
    assert {"mount", "setns", "unshare", "pivot_root", "prctl"} <= set(real)
    for name, function in real.items():
        assert hasattr(fake, name), f"fake_libc.FakeLibc lacks {name}"
        assert inspect.signature(getattr(fake, name)) == inspect.signature(function), name


def test_installed_fake_replaces_the_kernel_for_the_modules_above(monkeypatch):
    fake = FakeLibc().install(monkeypatch)
    libc.sethostname("box")
    libc.mount("proc", "/nowhere/proc", "proc", libc.MS_NOSUID)
    assert fake.hostname == "box"
    assert fake.calls == [("sethostname", ("box",)),
                          ("mount", ("proc", "/nowhere/proc", "proc", libc.MS_NOSUID, None))]


def _namespace_fds(count):
    """Descriptors standing for opened /proc/PID/ns files (the fake never reads them)."""
    return [os.open(os.devnull, os.O_RDONLY) for _ in range(count)]


def _is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_join_enters_each_namespace_in_order_and_closes_its_descriptor(monkeypatch):
    fake = FakeLibc().install(monkeypatch)
    fds = _namespace_fds(3)
    namespaces.join(list(zip(("ipc", "uts", "network"), fds)))
    assert fake.calls == [("setns", (fds[0], libc.CLONE_NEWIPC)),
                          ("setns", (fds[1], libc.CLONE_NEWUTS)),
                          ("setns", (fds[2], libc.CLONE_NEWNET))]
    assert not any(_is_open(fd) for fd in fds)


def test_a_refused_join_is_one_line_naming_the_namespace(monkeypatch):
    fake = FakeLibc().install(monkeypatch)
    fake.fail("setns", errno.EPERM)
    (fd,) = _namespace_fds(1)
    with pytest.raises(SlrError) as raised:
        namespaces.join([("network", fd)])
    # libc's OSError text already starts with "setns: " (it was once said twice).
    assert str(raised.value) == "namespace network: setns: Operation not permitted"
    assert not _is_open(fd)
