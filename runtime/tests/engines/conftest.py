"""Real engines (podman + conmon, containerd + ctr) driving slr and runc.

Each scenario runs with runc first, then with slr: runc passing shows the engine
configuration is sound on this host, so an slr failure is slr's.
"""

import os
import shutil
import subprocess
import tarfile
import time

import pytest

RUNC = shutil.which("runc") or "/usr/sbin/runc"


@pytest.fixture(params=["runc", "slr"])
def runtime_path(request, slr_bin):
    return RUNC if request.param == "runc" else slr_bin


@pytest.fixture(scope="session")
def rootfs_tar(busybox_rootfs, tmp_path_factory):
    path = tmp_path_factory.mktemp("image") / "busybox.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(busybox_rootfs, arcname=".")
    return str(path)


class Podman:
    """podman with private storage and a containers.conf of the example's settings."""

    def __init__(self, base):
        self.base = base
        self.conf = os.path.join(base, "containers.conf")
        with open(self.conf, "w") as f:
            f.write('[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n'
                    '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                    'netns = "none"\n')

    def __call__(self, *args, timeout=120, check=True, **kwargs):
        cmd = ["podman", "--root", os.path.join(self.base, "storage"), "--runroot",
               os.path.join(self.base, "run"), "--storage-driver", "vfs", *args]
        env = dict(os.environ, CONTAINERS_CONF=self.conf)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} -> {result.returncode}: {result.stderr}")
        return result


@pytest.fixture(scope="session")
def podman(tmp_path_factory, rootfs_tar):
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: tools/deps/engines.apt")
    engine = Podman(str(tmp_path_factory.mktemp("podman")))
    engine("import", rootfs_tar, "localhost/busybox:test")
    yield engine
    engine("rm", "--all", "--force", check=False)


class Containerd:
    def __init__(self, base):
        self.base = base
        self.socket = os.path.join(base, "containerd.sock")
        config = os.path.join(base, "config.toml")
        with open(config, "w") as f:
            f.write(f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    f'[grpc]\n  address = "{self.socket}"\n')
        self.log = open(os.path.join(base, "containerd.log"), "w")
        self.process = subprocess.Popen(["containerd", "--config", config], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.socket):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"containerd did not start: see {self.log.name}")
            time.sleep(0.05)

    def ctr(self, *args, timeout=120, check=True):
        result = subprocess.run(["ctr", "-a", self.socket, *args], capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} -> {result.returncode}: {result.stderr}")
        return result

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="session")
def containerd(tmp_path_factory, podman):
    if shutil.which("containerd") is None:
        pytest.fail("containerd is not installed: tools/deps/engines.apt")
    # An OCI archive of the same image, made by podman from the rootfs tarball.
    archive = str(tmp_path_factory.mktemp("oci") / "busybox-oci.tar")
    podman("save", "--format", "oci-archive", "-o", archive, "localhost/busybox:test")
    daemon = Containerd(str(tmp_path_factory.mktemp("containerd")))
    try:
        daemon.ctr("images", "import", "--base-name", "localhost/busybox", archive)
        yield daemon
    finally:
        for task in daemon.ctr("tasks", "ls", "-q", check=False).stdout.split():
            daemon.ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
        daemon.stop()
