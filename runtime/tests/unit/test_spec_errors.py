"""config.json -> the spec model or one error naming the JSON path (spec.load_bundle),
in process: the same messages `slr create` prints (test_bad_input.py checks them
through real containers)."""

import json

import pytest

from slruntime import spec
from slruntime.errors import SpecError
from slruntime.specgen import default_config

pytestmark = pytest.mark.unit


def write_bundle(tmp_path, edit=None, text=None):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = default_config(args=["true"], terminal=False)
    if edit:
        edit(config)
    (tmp_path / "config.json").write_text(text if text is not None else json.dumps(config))
    return str(tmp_path)


def test_slr_specs_default_config_parses(tmp_path):
    parsed = spec.load_bundle(write_bundle(tmp_path))
    assert parsed.root_path == str(tmp_path / "rootfs")
    assert parsed.root_readonly is True
    assert parsed.hostname == "slr"


def _set(path, value):
    def edit(config):
        *parents, last = path
        node = config
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set(["linux", "namespaces", 2, "type"], "foo"),
     'config.json: linux.namespaces[2].type: unknown namespace "foo"'),
    (lambda c: c.pop("ociVersion"), "config.json: ociVersion: is required"),
    (_set(["root"], {"path": ""}), "config.json: root.path: must not be empty"),
    (_set(["process", "user", "umask"], 0o1000), "config.json: process.user.umask: 512 is out of range [0, 511]"),
    (_set(["hostname"], "h" * 65), "config.json: hostname: is longer than 64 bytes"),
    (_set(["linux", "resources", "devices", 0, "access"], "rwx"),
     'config.json: linux.resources.devices[0].access: "rwx" is not a combination of r, w, m'),
    (_set(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_MAYBE"}),
     'config.json: linux.seccomp.defaultAction: unknown seccomp action "SCMP_ACT_MAYBE"'),
])
def test_a_bad_config_is_one_error_naming_its_path(tmp_path, edit, message):
    with pytest.raises(SpecError) as raised:
        spec.load_bundle(write_bundle(tmp_path, edit))
    assert str(raised.value) == message


def test_invalid_json_is_one_line(tmp_path):
    with pytest.raises(SpecError) as raised:
        spec.load_bundle(write_bundle(tmp_path, text='{"ociVersion": '))
    assert str(raised.value).startswith("config.json: invalid JSON: ")
    assert "\n" not in str(raised.value)


def test_a_missing_config_is_named(tmp_path):
    with pytest.raises(SpecError) as raised:
        spec.load_bundle(str(tmp_path))
    assert str(raised.value) == f"config.json: cannot read {tmp_path}/config.json: No such file or directory"
