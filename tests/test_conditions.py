"""The simulator's parser for ConnectWise's conditions language."""

from __future__ import annotations

import pytest

from cw_glbatch._conditions import condition_string
from cw_glbatch.testing._conditions import ConditionError, matches, parse_conditions

RECORD = {"id": 12, "batchIdentifier": 'a"b\\c', "closedFlag": False, "name": "Invoice 42"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id = 12", True),
        ("id > 12", False),
        ("id >= 12 and id <= 12", True),
        ("id != 12 or closedFlag = false", True),
        ("id < 5 or (id > 10 and closedFlag = FALSE)", True),
        ("id in (1, 2, 12)", True),
        ("id not in (1, 2, 12)", False),
        ('name like "Invoice*"', True),
        ('name contains "voice"', True),
        ("missing = null", True),
        ("id = 1 or id = 2 and id = 12", False),  # and binds tighter than or
    ],
)
def test_conditions_evaluate(text, expected):
    """Comparisons, membership, like/contains, and/or with precedence and parentheses."""
    assert matches(parse_conditions(text), RECORD) is expected


def test_client_quoting_is_read_back_by_the_simulator():
    """What the client writes for a plain identifier, the simulator reads back as it."""
    record = {**RECORD, "batchIdentifier": "R-7 of 2026"}
    literal = condition_string(record["batchIdentifier"])
    assert matches(parse_conditions(f"batchIdentifier = {literal}"), record)
    assert matches(parse_conditions(f'batchIdentifier in ({literal}, "x")'), record)


@pytest.mark.parametrize(
    "text", ["", "id =", "id = 1 and", "(id = 1", "id ~ 3", "= 3", "id not = 3", 'id = "x" junk']
)
def test_invalid_conditions_are_refused(text):
    """Malformed conditions raise ConditionError."""
    with pytest.raises(ConditionError):
        parse_conditions(text)
