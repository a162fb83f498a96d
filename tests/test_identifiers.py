"""The identifiers a run gives its batches: unique without remembering each generated one."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cw_glbatch import BatchRequest, _digest_set
from cw_glbatch._digest_set import DigestSet
from cw_glbatch._identifiers import BATCH_ID_VARIABLE, Identifiers, identifier_problem

REPEATED = "is already used by an earlier batch of this run"


def assign(identifiers: Identifiers | NaiveIdentifiers, given: str | None) -> Any:
    return identifiers.assign(BatchRequest(given, [1]))


def test_repeated_caller_identifier_is_refused():
    """A caller's identifier used by an earlier batch is refused, saying so; the first is kept."""
    identifiers = Identifiers(None, "S", ())
    assert assign(identifiers, "INV-7") == ("INV-7", None)
    assert assign(identifiers, "INV-7") == (
        "INV-7",
        "batchIdentifier 'INV-7' is already used by an earlier batch of this run; each batch "
        "needs its own, or the two could not be told apart",
    )


def test_generated_identifiers_skip_caller_ones_of_their_shape():
    """A caller's ``stamp-2`` (and the stamp itself) is passed over by the generated ones."""
    identifiers = Identifiers(None, "S", ())
    assert assign(identifiers, "S-2") == ("S-2", None)
    assert assign(identifiers, "S") == ("S", None)
    generated = [assign(identifiers, None)[0] for _ in range(3)]
    assert generated == ["S-3", "S-4", "S-5"]


def test_caller_identifier_equal_to_an_earlier_generated_one_is_refused():
    """A caller's identifier that the run generated earlier (variable base) is refused."""
    identifiers = Identifiers({BATCH_ID_VARIABLE: "221106"}, None, ())
    assert [assign(identifiers, None)[0] for _ in range(3)] == ["221106", "221106-2", "221106-3"]
    assert REPEATED in assign(identifiers, "221106-2")[1]
    assert assign(identifiers, "221106-4") == ("221106-4", None)  # not generated yet
    assert assign(identifiers, None)[0] == "221106-5"


def test_resumed_run_reserved_identifiers_are_not_generated_again():
    """Identifiers the resumed run gave are never generated; the numbers between them are."""
    identifiers = Identifiers(None, "S", ["S", "S-2", "S-4", "own"])
    assert [assign(identifiers, None)[0] for _ in range(3)] == ["S-3", "S-5", "S-6"]


def test_caller_may_use_a_reserved_identifier_not_yet_given_back():
    """As before: a caller's identifier the resumed run reserved is refused only once known."""
    identifiers = Identifiers(None, "S", ["S-2"])
    assert [assign(identifiers, None)[0] for _ in range(2)] == ["S", "S-3"]
    assert assign(identifiers, "S-2") == ("S-2", None)
    assert identifiers.assign(BatchRequest(None, [1]), "S-2") == ("S-2", None)  # the resumed one
    assert REPEATED in assign(identifiers, "S-2")[1]


@pytest.mark.parametrize("text", ["S-\u00b2", "S-0", "S-" + "9" * 40, "S-" + "9" * 60])
def test_numbers_of_other_shapes_are_plain_text(text):
    """Odd numbers after the base (non-ASCII digits, 0, huge) are caller text, reserved or not."""
    identifiers = Identifiers(None, "S", [text])
    assert [assign(identifiers, None)[0] for _ in range(2)] == ["S", "S-2"]
    problem = assign(identifiers, text)[1]
    assert problem is None or "longer than 50" in problem


def test_long_base_ending_in_a_suffix_never_repeats_itself():
    """A 50-character base ending in ``-2``: number 2 would equal number 1, so it is skipped."""
    base = "x" * 48 + "-2"
    identifiers = Identifiers({BATCH_ID_VARIABLE: base}, None, ())
    generated = [assign(identifiers, None)[0] for _ in range(3)]
    assert generated == [base, "x" * 48 + "-3", "x" * 48 + "-4"]


def test_digest_collision_refuses_instead_of_repeating(monkeypatch):
    """Two identifiers whose digests collide: the second is refused, never sent twice."""
    real = _digest_set._digest
    monkeypatch.setattr(_digest_set, "_digest", lambda t: real("A" if t == "B" else t))
    identifiers = Identifiers(None, "S", ())
    assert assign(identifiers, "A") == ("A", None)
    assert REPEATED in assign(identifiers, "B")[1]


def test_digest_set_finds_every_string_added_across_growth(monkeypatch):
    """Every string added is found after the table grows (old pages given back one at a time)."""
    monkeypatch.setattr(_digest_set, "_RELEASE_EVERY", 4096)
    strings = DigestSet()
    added = [f"B{n}" for n in range(5_000)]
    for text in added:
        strings.add(text)
    strings.add("B0")  # again: counted once
    assert len(strings) == 5_000
    assert all(text in strings for text in added)
    assert not any(f"C{n}" in strings for n in range(1_000))


def test_an_unusable_identifier_given_twice_is_refused_for_what_it_is_both_times():
    """A caller's identifier refused as too long is not "already used" when given again."""
    identifiers = Identifiers(None, "S", [])
    too_long = "x" * 51
    for _ in range(2):
        assert identifiers.assign(BatchRequest(too_long, [1])) == (
            too_long,
            "batchIdentifier is longer than 50 characters",
        )


class NaiveIdentifiers:
    """The model: every identifier used kept in a set (how `Identifiers` worked before, but
    for an unusable identifier, which is refused for what it is, not as used)."""

    def __init__(self, variable: str | None, stamp: str, reserved: list[str]) -> None:
        self.variable = variable
        self.base = stamp if variable is None else variable
        self.used: set[str] = set()
        self.reserved = set(reserved)
        self.count = 0

    def assign(self, request: BatchRequest, known: str | None = None) -> Any:
        if known is not None:
            self.used.add(known)
            return known, None
        identifier = request.identifier
        if identifier is not None:
            problem = identifier_problem(identifier, "batchIdentifier")
            if problem:  # never sent, so never "used"
                return identifier, problem
            if identifier in self.used:
                return identifier, "repeated"
            self.used.add(identifier)
            return identifier, None
        if self.variable is not None:
            problem = identifier_problem(self.variable, BATCH_ID_VARIABLE)
            if problem:
                return None, problem
        while True:
            self.count += 1
            suffix = "" if self.count == 1 else f"-{self.count}"
            candidate = self.base[: 50 - len(suffix)] + suffix
            if candidate not in self.used and candidate not in self.reserved:
                self.used.add(candidate)
                return candidate, None


LONG = "x" * 48 + "-2"  # a 50-character base whose number 2 is number 1


@st.composite
def runs(draw: st.DrawFn) -> tuple[str | None, list[str], list[tuple[str, str]]]:
    """A variable (or none: the stamp "S"), reserved identifiers, and batches of one run."""
    variable = draw(st.sampled_from([None, "V", LONG, "y" * 51]))
    base = variable or "S"
    texts = st.sampled_from(
        [
            base,
            f"{base}-2",
            f"{base}-3",
            f"{base}-03",
            f"{base}-1",
            f"{base}-0",
            LONG[:48] + "-3",
            "W",
        ]
    )
    reserved = draw(st.lists(texts, max_size=3))
    kinds = st.sampled_from(["given", "absent", "absent", "known"])
    return variable, reserved, draw(st.lists(st.tuples(kinds, texts), max_size=20))


@given(runs())
def test_identifiers_match_the_set_model(run):
    """Over any sequence of batches: the same answers as a set of everything used; no repeat."""
    variable, reserved, steps = run
    identifiers = Identifiers({BATCH_ID_VARIABLE: variable} if variable else None, "S", reserved)
    model = NaiveIdentifiers(variable, "S", reserved)
    handed_out: collections.Counter[str] = collections.Counter()
    for kind, text in steps:
        request = BatchRequest(text if kind == "given" else None, [1])
        known = text if kind == "known" else None
        identifier, problem = identifiers.assign(request, known)
        expected_identifier, expected_problem = model.assign(request, known)
        assert identifier == expected_identifier
        assert (problem is not None and REPEATED in problem) == (expected_problem == "repeated")
        if expected_problem != "repeated":
            assert problem == expected_problem
        if kind == "absent" and identifier is not None:
            assert identifier not in reserved
        if kind != "known" and identifier is not None and problem is None:  # sendable
            handed_out[identifier] += 1
            assert handed_out[identifier] == 1, f"{identifier!r} handed out twice"
