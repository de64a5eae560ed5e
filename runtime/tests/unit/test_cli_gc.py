"""cli.main runs a command without the cyclic garbage collector (the start path makes
no cycles worth collecting, and collections cost it time), except commands that stay
resident; an in-process caller gets its collector back as it was."""

import gc

import pytest

from slruntime import cli

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("enabled", [True, False])
def test_main_restores_the_callers_collector(enabled, capsys):
    (gc.enable if enabled else gc.disable)()
    try:
        assert cli.main(["--version"]) == 0
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_the_command_runs_without_the_collector(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(cli, "_version", lambda: seen.append(gc.isenabled()) or 0)
    cli.main(["--version"])
    assert seen == [False]


@pytest.mark.parametrize("argv, resident", [
    (["fgac", "--policy", "p"], True), (["events", "c"], True), (["profile", "x"], True),
    (["pool", "create", "p"], True), (["pool", "list"], True), (["pool", "run", "p"], False),
    (["run", "c"], False), (["create", "c"], False), (["exec", "c", "ls"], False), (["delete", "c"], False),
])
def test_resident_commands_keep_the_collector(argv, resident):
    assert cli._stays_resident(argv[0], argv[1:]) is resident
