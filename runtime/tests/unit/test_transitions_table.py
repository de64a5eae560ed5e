"""The lifecycle state machine's table (slruntime/transitions.py) as data: every operation
in every status is allowed or refused with a one-line message, in runc's words."""

import pytest

from slruntime import transitions
from slruntime.errors import WrongState

pytestmark = pytest.mark.unit

STATUSES = ("creating", "created", "running", "paused", "stopped")


class _Stub:
    """A container as transitions.check sees it: an id and a status (no process: the
    table is pure data)."""

    def __init__(self, status):
        self.id = "c1"
        self._status = status

    def status(self):
        return self._status


@pytest.mark.parametrize("operation", sorted(transitions.TRANSITIONS))
def test_every_status_is_allowed_or_refused_with_a_message(operation):
    allowed = transitions.TRANSITIONS[operation]
    assert set(allowed) <= set(STATUSES)
    assert set(allowed.values()) <= set(STATUSES) | {transitions.DELETED}
    for status in STATUSES:
        if status in allowed:
            assert transitions.check(operation, _Stub(status)) == status
            continue
        with pytest.raises(WrongState) as refused:
            transitions.check(operation, _Stub(status))
        message = str(refused.value)
        assert message and "{" not in message and "\n" not in message, (operation, status, message)


def test_only_start_pause_resume_and_delete_change_the_status():
    changing = {op for op, moves in transitions.TRANSITIONS.items()
                if any(old != new for old, new in moves.items())}
    assert changing == {"start", "pause", "resume", "delete", "delete --force"}


def test_refusals_in_runc_words():
    cases = {("start", "stopped"): "cannot start a container that has stopped",
             ("start", "paused"): "cannot start a container in the paused state",
             ("events", "stopped"): "container with id c1 is not running",
             ("kill", "stopped"): "container not running",
             ("exec", "paused"): "cannot exec in a paused container (use --ignore-paused to override)",
             ("exec --ignore-paused", "stopped"): "cannot exec in a stopped container",
             ("delete", "running"): "cannot delete container c1 that is not stopped: running"}
    for (operation, status), expected in cases.items():
        assert str(transitions.refusal(operation, status, "c1")) == expected
