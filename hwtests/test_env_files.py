"""The labgrid env files are valid for labgrid itself: they load, every
driver they name exists with the attributes they set, and the QEMU ones
instantiate their whole target (drivers bound, strategy imported), without
booting anything.  Runs on the host only."""
import glob
import os

import attr
import pytest
from labgrid import Environment
from labgrid.factory import target_factory

from .image.rootfs import FIRST_OUTPUT

ENV_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "env")
TARGET_ENVS = sorted(p for p in glob.glob(os.path.join(ENV_DIR, "*.yaml"))
                     if not p.endswith("exporter-example.yaml"))
DUMMY = {"LG_KERNEL": "/nonexistent/vmlinuz", "LG_ROOTFS": "/nonexistent/rootfs",
         "LG_QEMU_EXTRA": "", "LG_QEMU_ACCEL": "tcg", "LG_BOOT_ARGS": "",
         "LG_YOCTO_DEPLOY_DIR": "/nonexistent/deploy"}


@pytest.fixture
def lg_vars(monkeypatch):
    for name, value in DUMMY.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("path", TARGET_ENVS, ids=os.path.basename)
def test_env_file_names_real_drivers_and_attributes(path, lg_vars):
    env = Environment(config_file=path)
    drivers = env.config.get_targets()["main"]["drivers"]
    assert "SlrStrategy" in drivers and "ShellDriver" in drivers
    for name, options in drivers.items():
        cls = target_factory.drivers[name]
        known = {a.name for a in attr.fields(cls)} - {"target", "name", "state"}
        assert set(options or {}) <= known, f"{name}: unknown {set(options) - known}"


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_qemu_env_instantiates_its_target(arch, lg_vars):
    env = Environment(config_file=os.path.join(ENV_DIR, f"qemu-{arch}.yaml"))
    target = env.get_target("main")
    strategy = target.get_driver("SlrStrategy", activate=False)
    assert strategy.sdmux is None and strategy.storage is None
    qemu = target.get_driver("QEMUDriver", activate=False)
    assert qemu.disk == "rootfs" and "-accel tcg" in qemu.extra_args
    # The strategy waits for the line the CI image's first container prints.
    assert strategy.first_output == FIRST_OUTPUT
    env.cleanup()


def test_exporter_example_is_valid_yaml_with_both_places():
    from labgrid.util.yaml import load
    with open(os.path.join(ENV_DIR, "exporter-example.yaml")) as f:
        places = load(f)
    assert set(places) == {"slr-rpi4", "slr-bbb"}
    for resources in places.values():
        for name in resources:
            assert name in target_factory.resources, name
