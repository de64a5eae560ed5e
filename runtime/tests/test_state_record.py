"""state.json: the versioned record, and containers created by the previous release
(whose state.json had no version) still managed by this one."""

import json
import os

from slruntime.errors import SlrError
from slruntime.state import SCHEMA_VERSION, StateRecord

# state.json exactly as the release before the versioned record wrote it (keys and
# order of container.py/state.py then); the test fills in a live container's values.
PREVIOUS_RELEASE_KEYS = ["ociVersion", "id", "status", "pid", "bundle", "annotations", "created", "owner",
                         "creator_pid", "init_start_time", "cgroup", "rootfs"]


def _previous_release_state(container_id, status, pid, bundle, init_start_time, cgroup, rootfs):
    return {"ociVersion": "1.2.0", "id": container_id, "status": status, "pid": pid, "bundle": bundle,
            "annotations": {"org.example": "kept"}, "created": "2026-01-01T00:00:00.000000000Z", "owner": "",
            "creator_pid": 1, "init_start_time": init_start_time, "cgroup": cgroup, "rootfs": rootfs}


def test_previous_release_literal_has_the_keys_it_had():
    assert list(_previous_release_state("c", "created", 1, "/b", 1, None, "/r")) == PREVIOUS_RELEASE_KEYS


def test_a_container_of_the_previous_release_is_managed(slr, bundle, state_root):
    b = bundle(["sleep", "1000"])
    slr("create", "--bundle", b, "c1", check=True)
    path = os.path.join(state_root, "c1", "state.json")
    with open(path) as f:
        live = json.load(f)
    assert live["slrStateVersion"] == SCHEMA_VERSION
    # Replaced by what the previous release wrote for this container: no version field.
    with open(path, "w") as f:
        json.dump(_previous_release_state("c1", "created", live["pid"], b, live["init_start_time"], live["cgroup"],
                                          live["rootfs"]), f)
    state = slr.state("c1")
    assert (state["status"], state["pid"], state["annotations"]) == ("created", live["pid"], {"org.example": "kept"})
    slr("start", "c1", check=True)
    assert slr.state("c1")["status"] == "running"
    with open(path) as f:
        assert json.load(f)["slrStateVersion"] == SCHEMA_VERSION  # rewritten by start in the new layout
    slr("kill", "c1", "KILL", check=True)
    slr("delete", "--force", "c1", check=True)
    assert slr.ids() == []
    if live["cgroup"]:  # the cgroup the record names is gone with the container
        assert not [p for p in live["cgroup"]["paths"].values() if os.path.exists(p)]


def test_record_round_trip_and_previous_release_read():
    record = StateRecord.from_json(_previous_release_state("c1", "running", 42, "/b", 7, None, "/r"), "test")
    assert (record.id, record.status, record.pid, record.init_start_time, record.pool, record.no_new_keyring) == (
        "c1", "running", 42, 7, None, False)
    record.pool, record.no_new_keyring = "p", True
    data = record.to_json()
    assert data["slrStateVersion"] == SCHEMA_VERSION
    again = StateRecord.from_json(data, "test")
    assert [getattr(again, name) for name in StateRecord.__slots__] == [getattr(record, n) for n in StateRecord.__slots__]


def test_a_newer_or_broken_record_is_refused_with_one_line():
    newer = dict(_previous_release_state("c1", "running", 42, "/b", 7, None, "/r"), slrStateVersion=SCHEMA_VERSION + 1)
    for data, expected in ((newer, f"unknown state version {SCHEMA_VERSION + 1}"),
                           ({"id": "c1"}, "unreadable state: bundle is missing"),
                           ([], "unreadable state: not a JSON object")):
        try:
            StateRecord.from_json(data, "container c1")
        except SlrError as exc:
            assert str(exc).startswith(f"container c1: {expected}"), str(exc)
        else:
            raise AssertionError(f"{data} was accepted")
