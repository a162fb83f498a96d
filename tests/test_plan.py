"""The planner: every combination of what is known about a batch and the run's state."""

from __future__ import annotations

import itertools

import pytest

from cw_glbatch._models import BatchError
from cw_glbatch._plan import Action, Decision, Known, plan

ANY = None  # a wildcard in a row
ERROR = BatchError("GL entries already in a batch", 400, "InvalidObject")

# What the journal of the run being resumed may say about a batch.
JOURNAL = {
    "none": None,
    "sent": Known("sent", "B1"),
    "unknown": Known("unknown", "B1"),
    "created+id": Known("created", "B1", 7),
    "created, no id": Known("created", "B1"),
    "failed": Known("failed", "B1", error=ERROR),
}
# What an earlier success file (or a fail file's OutcomeUnknown mark) may say.
EARLIER = {
    "none": None,
    "created+id": Known("created", "B1", 7),
    "created, no id": Known("created", "B1"),
    "unknown": Known("unknown", "B1"),
}
SENT = {"sent", "unknown"}
KNOWN_EARLIER = {"created+id", "created, no id", "unknown"}


def _d(action: Action, whole_history: bool = False) -> Decision:
    return Decision(action, whole_history)


# (journal, earlier, invalid, stopped, dry run) -> decision. A set or ANY matches several
# values. The rows must not overlap, and together they must cover every combination.
TABLE = [
    ({"created+id"}, ANY, ANY, ANY, ANY, _d(Action.CARRIED_OVER)),
    ({"created, no id"}, {"none"}, ANY, ANY, False, _d(Action.LEARN_ID)),
    ({"created, no id"}, KNOWN_EARLIER, ANY, ANY, False, _d(Action.LEARN_ID, True)),
    ({"created, no id"}, ANY, ANY, ANY, True, _d(Action.PLANNED)),
    ({"failed"}, ANY, ANY, ANY, ANY, _d(Action.ANSWERED)),
    (SENT, ANY, ANY, True, ANY, _d(Action.UNSETTLED)),
    (SENT, {"none"}, ANY, False, False, _d(Action.LOOK_UP_FIRST)),
    (SENT, KNOWN_EARLIER, ANY, False, False, _d(Action.LOOK_UP_FIRST, True)),
    (SENT, ANY, ANY, False, True, _d(Action.PLANNED)),
    ({"none"}, ANY, True, ANY, ANY, _d(Action.INVALID)),
    ({"none"}, {"created+id"}, False, ANY, ANY, _d(Action.CARRIED_OVER)),
    ({"none"}, {"created, no id"}, False, ANY, False, _d(Action.LEARN_ID, True)),
    ({"none"}, {"created, no id"}, False, ANY, True, _d(Action.PLANNED)),
    ({"none"}, {"unknown"}, False, True, ANY, _d(Action.UNSETTLED)),
    ({"none"}, {"unknown"}, False, False, False, _d(Action.LOOK_UP_FIRST, True)),
    ({"none"}, {"unknown"}, False, False, True, _d(Action.PLANNED)),
    ({"none"}, {"none"}, False, True, ANY, _d(Action.NOT_SENT)),
    ({"none"}, {"none"}, False, False, True, _d(Action.PLANNED)),
    ({"none"}, {"none"}, False, False, False, _d(Action.SEND)),
]
BOTH = (False, True)
COMBINATIONS = list(itertools.product(JOURNAL, EARLIER, BOTH, BOTH, BOTH))


def _matches(row: tuple, combination: tuple) -> bool:
    for wanted, value in zip(row[:5], combination, strict=True):
        if wanted is ANY:
            continue
        if isinstance(wanted, set) and value not in wanted:
            return False
        if isinstance(wanted, bool) and value is not wanted:
            return False
    return True


def test_rows_cover_every_combination_exactly_once():
    """Each of the 192 combinations is matched by exactly one row, and every row is used."""
    used = set()
    for combination in COMBINATIONS:
        rows = [n for n, row in enumerate(TABLE) if _matches(row, combination)]
        assert len(rows) == 1, (combination, rows)
        used.update(rows)
    assert used == set(range(len(TABLE)))


@pytest.mark.parametrize("combination", COMBINATIONS, ids=str)
def test_every_combination_gets_its_row_decision(combination):
    """The planner returns the decision of the one row matching the combination."""
    (row,) = [row for row in TABLE if _matches(row, combination)]
    journal, earlier, invalid, stopped, dry_run = combination
    decision = plan(
        JOURNAL[journal], EARLIER[earlier], invalid=invalid, stopped=stopped, dry_run=dry_run
    )
    assert decision == row[5]


def test_a_batch_sent_before_is_never_reported_not_sent():
    """Whatever the run's state, a batch the journal records as sent is never NOT_SENT."""
    for combination in COMBINATIONS:
        if combination[0] == "none":
            continue
        journal, earlier, invalid, stopped, dry_run = combination
        decision = plan(
            JOURNAL[journal], EARLIER[earlier], invalid=invalid, stopped=stopped, dry_run=dry_run
        )
        assert decision.action not in (Action.NOT_SENT, Action.SEND, Action.INVALID)
