"""Every kas file validates against the JSON schema of the kas release in tools/deps."""
import os
import re

import jsonschema
import kas
import pytest
import yaml

from layer_paths import KAS_DIR, REPO, read

KAS_FILES = sorted(os.path.join(KAS_DIR, n) for n in os.listdir(KAS_DIR) if n.endswith(".yml"))
SCHEMA = yaml.safe_load(read(os.path.join(os.path.dirname(kas.__file__), "schema-kas.json")))


@pytest.mark.parametrize("path", KAS_FILES, ids=os.path.basename)
def test_kas_file_matches_the_schema(path):
    jsonschema.validate(yaml.safe_load(read(path)), SCHEMA)


@pytest.mark.parametrize("path", KAS_FILES, ids=os.path.basename)
def test_kas_file_includes_exist_and_commits_are_quoted(path):
    config = yaml.safe_load(read(path))
    for include in config["header"].get("includes", []):
        # kas resolves includes from the top of the repository holding the file.
        assert os.path.isfile(os.path.join(REPO, include)), include
    for name, repo in (config.get("repos") or {}).items():
        if repo and "url" in repo:
            assert re.fullmatch(r"[0-9a-f]{40}", repo["commit"]), f"{name}: pin a full commit"
            assert re.search(rf'commit: "{repo["commit"]}"', read(path)), f"{name}: quote the hash"


def test_the_machine_files_cover_qemu_and_boards():
    machines = {yaml.safe_load(read(p)).get("machine") for p in KAS_FILES}
    assert {"qemuarm64", "qemux86-64", "raspberrypi4-64", "beaglebone-yocto"} <= machines
