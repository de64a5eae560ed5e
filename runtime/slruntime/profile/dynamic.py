"""Dynamic complement to the static analysis: run the bundle's workload and see what it uses.

The workload runs in a real slr container whose filter allows everything the static
analysis found and sends every other system call to this process through seccomp user
notification (OCI `listenerPath`, the runtime-spec's seccomp agent protocol). Each
notification is recorded and answered "continue", so the workload runs unhindered, and
what it used beyond the static profile is added to the generated one.

What the run does not exercise is not observed: this only adds to the static result.
"""

import fcntl
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid

from slruntime.profile import syscalls

# ioctls of the seccomp notify fd: _IOWR('!', 0, struct seccomp_notif) (80 bytes) and
# _IOWR('!', 1, struct seccomp_notif_resp) (24 bytes).
_NOTIF_RECV = 0xC0502100
_NOTIF_SEND = 0xC0182101
_NOTIF_SIZE = 80
_FLAG_CONTINUE = 1          # SECCOMP_USER_NOTIF_FLAG_CONTINUE
# slr sends the notify descriptor to the listener right after loading the filter: these
# calls must not wait for a listener that has not received its descriptor yet. They are
# allowed in the observing filter, so the run cannot add them.
_LISTENER_HANDOFF = ("sendmsg", "close")


class DynamicError(Exception):
    pass


def observe(config, rootfs, arch, allowed, timeout):
    """Run the bundle's process in a container for at most `timeout` seconds.

    Returns {"observed": {syscall name: count} beyond `allowed`, "exit_code": of `slr
    run`, "stderr": its last line, "timed_out": whether the workload had to be killed}.
    """
    if os.uname().machine != arch:
        raise DynamicError(f"the workload can only run on its own architecture ({arch}), "
                           f"this host is {os.uname().machine}")
    table = syscalls.table(arch)
    notify = sorted(set(table.values()) - set(allowed) - set(_LISTENER_HANDOFF))
    work = tempfile.mkdtemp(prefix="slr-profile-")
    try:
        listener_path = os.path.join(work, "listener.sock")
        bundle = os.path.join(work, "bundle")
        os.mkdir(bundle)
        _write_config(bundle, config, rootfs, arch, notify, listener_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(listener_path)
        listener.listen(1)
        state_root = os.path.join(work, "state")
        container_id = "slr-profile-" + uuid.uuid4().hex[:12]
        slr = [sys.executable, "-m", "slruntime", "--root", state_root]
        stderr_path = os.path.join(work, "stderr")
        with open(stderr_path, "wb") as stderr:
            runtime = subprocess.Popen(slr + ["run", "--bundle", bundle, container_id],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + timeout
        try:
            observed = _serve(listener, runtime, table, deadline)
        finally:
            listener.close()
            _stop(runtime, slr, container_id)
        with open(stderr_path, "rb") as stream:
            lines = stream.read().decode(errors="replace").strip().splitlines()
        return {"observed": observed, "exit_code": runtime.returncode,
                "stderr": lines[-1] if lines else "", "timed_out": time.monotonic() >= deadline}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _stop(runtime, slr, container_id):
    """End the run: ask slr to kill the container, then kill what is left of it."""
    if runtime.poll() is None:
        subprocess.run(slr + ["kill", container_id, "KILL"], capture_output=True, timeout=30)
        try:
            runtime.wait(5)
        except subprocess.TimeoutExpired:
            for pid in _descendants(runtime.pid) + [runtime.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            runtime.wait()
    subprocess.run(slr + ["delete", "--force", container_id], capture_output=True, timeout=30)


def _descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stream:
                    parent = int(stream.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), ()):
            found.append(child)
            queue.append(child)
    return found


def _write_config(bundle, config, rootfs, arch, notify, listener_path):
    import json

    config = json.loads(json.dumps(config))
    config.setdefault("root", {})["path"] = os.path.abspath(rootfs)
    config.setdefault("process", {})["terminal"] = False
    config.setdefault("linux", {})["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [syscalls.oci_arch(arch)],
        "listenerPath": listener_path,
        "syscalls": [{"names": notify, "action": "SCMP_ACT_NOTIFY"}],
    }
    with open(os.path.join(bundle, "config.json"), "w") as stream:
        json.dump(config, stream)


def _serve(listener, runtime, table, deadline):
    notify_fd = None
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    observed = {}
    try:
        while time.monotonic() < deadline:
            if notify_fd is None and runtime.poll() is not None:
                break                     # the container never got as far as its filter
            for fd, events in poller.poll(100):
                if fd == listener.fileno():
                    connection, _ = listener.accept()
                    with connection:
                        _, fds, _, _ = socket.recv_fds(connection, 1 << 16, 1)
                    if not fds:
                        raise DynamicError("the runtime sent no seccomp notify descriptor")
                    notify_fd = fds[0]
                    poller.unregister(listener)
                    poller.register(notify_fd, select.POLLIN)
                elif events & select.POLLIN:
                    number = _answer(notify_fd)
                    if number is not None:
                        name = table.get(number, str(number))
                        observed[name] = observed.get(name, 0) + 1
                elif events & (select.POLLHUP | select.POLLERR):
                    return observed       # every task using the filter has exited
        return observed
    finally:
        if notify_fd is not None:
            os.close(notify_fd)


def _answer(notify_fd):
    """Receive one notification, let the call go on; its syscall number."""
    request = bytearray(_NOTIF_SIZE)
    try:
        fcntl.ioctl(notify_fd, _NOTIF_RECV, request, True)
    except OSError:
        return None                       # the task was killed in between
    notification_id, _pid, _flags, number = struct.unpack_from("<QIIi", request)
    response = bytearray(struct.pack("<QqiI", notification_id, 0, 0, _FLAG_CONTINUE))
    try:
        fcntl.ioctl(notify_fd, _NOTIF_SEND, response, True)
    except OSError:
        pass                              # ENOENT: the task died meanwhile
    return number
