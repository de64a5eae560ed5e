"""`slr profile` runs as root on build hosts over images nobody vetted (issue 16): what a
bundle carries must not make it write through links, hang on special files, read without
bound, end in a traceback, or look at build-host files outside --host-root."""

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

import hostile

VICTIM_TEXT = b"a file of the build host\n"


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    return hostile.build_programs(str(tmp_path_factory.mktemp("tiny-programs")))


@pytest.fixture
def bundle(tmp_path, programs):
    """A bundle whose process is /bin/static of a tiny rootfs."""
    path = tmp_path / "bundle"
    path.mkdir()
    hostile.make_rootfs(str(path / "rootfs"), programs)
    config = {"ociVersion": "1.2.0", "root": {"path": "rootfs"},
              "process": {"args": ["/bin/static"], "cwd": "/"}}
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.fixture
def victim(tmp_path):
    """A build-host file the image must not reach."""
    path = tmp_path / "victim"
    path.write_bytes(VICTIM_TEXT)
    return path


def _one_line_error(result, *words):
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 1 and stderr.count("\n") == 1, stderr
    assert stderr.startswith("slr profile: ") and all(word in stderr for word in words), stderr
    return stderr


def _fifo_with_reader(path):
    """A FIFO at `path` with a reader attached (so that a writer does not block), and the
    reader's descriptor: what a writer put into it can be read back."""
    os.mkfifo(path)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


def _drain(fd):
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return b""
    finally:
        os.close(fd)


# --- writes -----------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["output", "report"])
def test_output_symlink_to_a_fifo_is_not_written_through(bundle, tmp_path, option):
    reader = _fifo_with_reader(tmp_path / "fifo")
    target = bundle / ("seccomp.profile.json" if option == "output" else "report.json")
    os.symlink(tmp_path / "fifo", target)
    args = ["--bundle", str(bundle)] + (["--report", str(target)] if option == "report" else [])
    result = hostile.profile(*args)
    written = _drain(reader)
    assert written == b""
    _one_line_error(result, str(target), "symlink", "not replaced")
    assert os.path.islink(target)


@pytest.mark.parametrize("kind", ["symlink to a host file", "character device"])
def test_output_that_is_a_link_or_device_is_refused(bundle, victim, kind):
    target = bundle / "seccomp.profile.json"
    if kind == "character device":
        os.mknod(target, stat.S_IFCHR | 0o666, os.makedev(1, 3))      # like /dev/null
    else:
        os.symlink(victim, target)
    result = hostile.profile("--bundle", str(bundle))
    _one_line_error(result, str(target), "not replaced")
    assert victim.read_bytes() == VICTIM_TEXT
    assert not stat.S_ISREG(os.lstat(target).st_mode)


def test_planted_temporary_file_link_is_not_followed(bundle, victim):
    # The old temporary name was `seccomp.profile.json.tmp<pid>`: plant it for the pid
    # the analysis will have (the process running main() here) and see it never written.
    code = ("import os, sys; from slruntime.profile.cli import main; "
            f"os.symlink({str(victim)!r}, {str(bundle / 'seccomp.profile.json')!r} + f'.tmp{{os.getpid()}}'); "
            f"sys.exit(main(['--bundle', {str(bundle)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=hostile.TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert victim.read_bytes() == VICTIM_TEXT
    hostile.check_outcome(result, bundle / "seccomp.profile.json")
    leftovers = [name for name in os.listdir(bundle) if name.startswith(".seccomp.profile.json.")]
    assert leftovers == []


def test_install_refuses_a_config_json_link_and_keeps_the_host_file(bundle, victim):
    config = (bundle / "config.json").read_bytes()
    victim.write_bytes(config)
    (bundle / "config.json").unlink()
    os.symlink(victim, bundle / "config.json")
    result = hostile.profile("--bundle", str(bundle), "--install")
    _one_line_error(result, "config.json", "symlink")
    assert victim.read_bytes() == config


def test_install_keeps_the_config_mode_and_leaves_no_temporary_file(bundle):
    os.chmod(bundle / "config.json", 0o640)
    result = hostile.profile("--bundle", str(bundle), "--install")
    hostile.check_outcome(result, bundle / "seccomp.profile.json")
    assert stat.S_IMODE(os.stat(bundle / "config.json").st_mode) == 0o640
    assert sorted(os.listdir(bundle)) == ["config.json", "rootfs", "seccomp.profile.json"]


# --- reads ------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["config.json", "/etc/ld-musl-x86_64.path", "PT_INTERP", "DT_NEEDED",
                                   "/etc/ld.so.conf"])
def test_fifo_in_the_image_does_not_hang(tmp_path, programs, where):
    rootfs = hostile.make_rootfs(str(tmp_path / "rootfs"), programs, interp=b"/lib/ld-fifo.so")
    os.makedirs(os.path.join(rootfs, "etc"))
    path = {"config.json": str(tmp_path / "config.json"), "PT_INTERP": os.path.join(rootfs, "lib/ld-fifo.so"),
            "DT_NEEDED": os.path.join(rootfs, hostile.NEEDED.lstrip("/"))}.get(where) or rootfs + where
    if os.path.exists(path):
        os.unlink(path)
    os.mkfifo(path)
    if where == "config.json":
        result = hostile.profile("--bundle", str(tmp_path))
        _one_line_error(result, "config.json", "FIFO")
        return
    entry = "/bin/dynamic-bare" if where.startswith("/etc") else "/bin/dynamic"
    result = hostile.profile("--rootfs", rootfs, "--entry", entry, "--report", "-")
    if where.startswith("/etc"):
        _one_line_error(result, where, "FIFO")
    else:
        # A loader or library that is not a regular file is missing, as for the kernel.
        assert result.returncode == 0, result.stderr
        assert "missing library: " in result.stdout.decode()


def test_device_in_place_of_a_library_is_not_read(tmp_path, programs):
    rootfs = hostile.make_rootfs(str(tmp_path / "rootfs"), programs)
    library = os.path.join(rootfs, hostile.NEEDED.lstrip("/"))
    os.unlink(library)
    os.mknod(library, stat.S_IFCHR | 0o666, os.makedev(1, 5))         # like /dev/zero
    result = hostile.profile("--rootfs", rootfs, "--entry", "/bin/dynamic", "--report", "-")
    assert result.returncode == 0, result.stderr
    assert f"missing library: {hostile.NEEDED}" in result.stdout.decode()


def test_sparse_elf_is_read_by_its_segments(tmp_path, programs):
    # 512 MiB of apparent size, a few KiB of data: read whole (twice), it took 1 GiB.
    rootfs = hostile.make_rootfs(str(tmp_path / "rootfs"), programs)
    os.truncate(os.path.join(rootfs, "bin/static"), 512 << 20)
    result = hostile.profile("--rootfs", rootfs, "--entry", "/bin/static")
    profile = hostile.check_outcome(result)
    assert "getpid" in profile["syscalls"][0]["names"]


def test_non_utf8_interpreter_and_names(tmp_path, programs):
    rootfs = hostile.make_rootfs(str(tmp_path / "rootfs"), programs, interp=b"/lib/ld-\xff\xfe.so")
    with open(os.path.join(rootfs, "bin/static"), "rb") as stream:
        data = stream.read()
    with open(os.fsdecode(os.path.join(rootfs.encode(), b"bin/st\xe9tic")), "wb") as stream:
        stream.write(data)
    os.chmod(os.path.join(rootfs.encode(), b"bin/st\xe9tic"), 0o755)
    result = hostile.profile("--rootfs", rootfs, "--report", "-")
    assert result.returncode == 0, result.stderr
    assert b"missing library: /lib/ld-\xff\xfe.so" in result.stdout
    assert b"/bin/st\xe9tic" in result.stdout


def test_deep_directory_tree(tmp_path, programs):
    rootfs = hostile.make_rootfs(str(tmp_path / "rootfs"), programs)
    try:
        deep = hostile.make_deep_tree(os.path.join(rootfs, "d"), 1200)
        with open(os.path.join(deep, "app.py"), "w") as stream:
            stream.write("import posix\n")
        result = hostile.profile("--rootfs", rootfs)
        hostile.check_outcome(result)
        assert result.returncode == 0, result.stderr
    finally:
        hostile.remove_tree(os.path.join(rootfs, "d"))


# --- paths resolved inside the image ----------------------------------------------------

def _image_with_bundle(tmp_path, programs, config_edit):
    """An image tree holding a bundle at /srv/bundle, and a build-host tree beside it
    with an ELF program the analysis must never see."""
    image = tmp_path / "image"
    hostile.make_rootfs(str(image), programs)
    host_only = tmp_path / "host-only"
    hostile.make_rootfs(str(host_only), programs)
    os.rename(host_only / "bin/static", host_only / "bin/host-program")
    bundle = image / "srv" / "bundle"
    bundle.mkdir(parents=True)
    config = {"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "process": {"args": ["/bin/static"]},
              "mounts": []}
    hostile.make_rootfs(str(bundle / "rootfs"), programs)
    config_edit(config, host_only)
    (bundle / "config.json").write_text(json.dumps(config))
    return image, bundle


def _entries(image, bundle, tmp_path):
    report = tmp_path / "report.json"
    result = hostile.profile("--bundle", str(bundle), "--host-root", str(image), "--report", str(report))
    return result, (json.loads(report.read_text())["entries"] if result.returncode == 0 else None)


def test_relative_bind_source_stays_in_the_image(tmp_path, programs):
    def bind_up(config, _):
        config["mounts"].append({"destination": "/mnt", "type": "bind", "source": "../../../..",
                                 "options": ["rbind"]})
    image, bundle = _image_with_bundle(tmp_path, programs, bind_up)
    result, entries = _entries(image, bundle, tmp_path)
    assert result.returncode == 0, result.stderr
    # `..` stops at the image's root: /mnt shows the image, not the build host's tmp_path.
    assert "/mnt/bin/static" in entries
    assert not any("host-only" in path or "host-program" in path for path in entries), sorted(entries)


def test_absolute_root_path_is_an_image_path(tmp_path, programs):
    def host_root_path(config, host_only):
        config["root"]["path"] = str(host_only)
    image, bundle = _image_with_bundle(tmp_path, programs, host_root_path)
    result, _ = _entries(image, bundle, tmp_path)
    _one_line_error(result, "root.path", "not a directory under")


# --- packaging --------------------------------------------------------------------------

def test_missing_extra_is_named_in_one_line(tmp_path):
    """`pip install ./runtime` without the extra: `slr profile` names slruntime[profile]."""
    runtime = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    source = tmp_path / "runtime"      # a copy: building in place would leave build/ behind
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "bin", "slruntime"):
        copy = shutil.copytree if os.path.isdir(os.path.join(runtime, name)) else shutil.copy
        copy(os.path.join(runtime, name), source / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), "--no-cache-dir", str(source)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("slruntime-*.whl")
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    # The runtime's own dependencies but not capstone (the extra), as `pip install ./runtime`.
    site = subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", site,
                    str(wheel)], check=True, capture_output=True)
    metadata = subprocess.run([str(venv / "bin/python"), "-c",
                               "import importlib.metadata as m; print(m.requires('slruntime'))"],
                              capture_output=True, text=True, check=True).stdout
    assert "capstone>=5.0; extra == \"profile\"" in metadata
    result = subprocess.run([str(venv / "bin/python"), "-m", "slruntime", "profile", "--rootfs", str(tmp_path)],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 1
    assert result.stderr == ("slr profile: the analyser needs the Python module capstone: install "
                             "slruntime[profile] (pip install 'slruntime[profile]')\n"), result.stderr


def test_loader_configuration_includes_are_read_once(tmp_path, programs):
    # Ten files that each include all ten: 10^8 reads when followed to depth 8.
    rootfs = hostile.make_rootfs(str(tmp_path / "rootfs"), programs)
    os.makedirs(os.path.join(rootfs, "etc/ld.so.conf.d"))
    with open(os.path.join(rootfs, "etc/ld.so.conf"), "w") as stream:
        stream.write("include /etc/ld.so.conf.d/*.conf\n")
    for index in range(10):
        with open(os.path.join(rootfs, f"etc/ld.so.conf.d/{index}.conf"), "w") as stream:
            stream.write(f"/lib{index}\ninclude /etc/ld.so.conf.d/*.conf\n")
    result = hostile.profile("--rootfs", rootfs, "--entry", "/bin/dynamic-bare", timeout=120)
    assert "getpid" in hostile.check_outcome(result)["syscalls"][0]["names"]


def test_bound_device_and_dotted_names(tmp_path, programs):
    """A bind-mounted /dev/null (a device node in an image tree) is not walked; a file
    named `..x` is inside the rootfs."""
    image = tmp_path / "image"
    hostile.make_rootfs(str(image), programs)
    os.makedirs(image / "dev")
    os.mknod(image / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    bundle = image / "bundle"
    hostile.make_rootfs(str(bundle / "rootfs"), programs)
    os.rename(bundle / "rootfs/bin/static", bundle / "rootfs/..static")
    config = {"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "process": {"args": ["/..static"]},
              "mounts": [{"destination": "/dev/null", "type": "bind", "source": "/dev/null", "options": ["bind"]}]}
    (bundle / "config.json").write_text(json.dumps(config))
    report = tmp_path / "report.json"
    result = hostile.profile("--bundle", str(bundle), "--host-root", str(image), "--report", str(report))
    hostile.check_outcome(result, bundle / "seccomp.profile.json")
    assert "/..static" in json.loads(report.read_text())["entries"]


def test_nul_in_loader_configuration_and_config_paths(tmp_path, programs):
    rootfs = hostile.make_rootfs(str(tmp_path / "rootfs"), programs)
    os.makedirs(os.path.join(rootfs, "etc"))
    with open(os.path.join(rootfs, "etc/ld.so.conf"), "w") as stream:
        stream.write("/li\0b\ninclude /etc/x\0*.conf\n")
    hostile.check_outcome(hostile.profile("--rootfs", rootfs, "--entry", "/bin/dynamic-bare"))
    config = {"ociVersion": "1.2.0", "root": {"path": "rootfs"},
              "process": {"args": ["static"], "env": ["PATH=/b\u0000in:/bin"]},
              "mounts": [{"destination": "/mnt", "type": "bind", "source": "/b\u0000in", "options": ["bind"]}]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = hostile.profile("--bundle", str(tmp_path))
    _one_line_error(result, "bind mount source")


def test_large_code_is_disassembled_in_bounded_memory(tmp_path):
    # 3 MiB of code (1.5 million two-byte instructions): capstone decoding the whole text
    # at once needs ~360 MiB for its instruction array, and ended in "CsError: Out of
    # memory" (a traceback) under the address-space limit; a campaign found it on a big
    # library. Decoded a window at a time, the analysis finds the program's syscall.
    source = tmp_path / "big.c"
    source.write_text(hostile.PROGRAM_C.replace("extern long tiny_call(long n);", "")
                      .replace("tiny_call(39);      /* getpid */",
                               '__asm__ volatile ("mov $39, %eax; syscall");')
                      + '__asm__(".text\\n.fill 3145728, 1, 0\\n");\n')
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    subprocess.run(["gcc", "-O2", "-nostdlib", "-static", "-o", str(rootfs / "bin/big"), str(source)],
                   check=True)
    result = hostile.profile("--rootfs", str(rootfs), "--entry", "/bin/big")
    profile = hostile.check_outcome(result)
    assert "getpid" in profile["syscalls"][0]["names"]
