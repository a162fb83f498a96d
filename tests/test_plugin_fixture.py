"""The connectwise pytest fixture, used only through the public API, as a user would."""

from __future__ import annotations

import pytest

from cw_glbatch import ValidationError


def test_fixture_gives_a_fake_and_a_ready_client(connectwise):
    """The fixture yields a fresh simulator and a client wired to it."""
    ids = connectwise.fake.populate(3, seed=1)
    connectwise.client.create_batch("B1", ids)
    assert [b.gl_entry_ids for b in connectwise.fake.batches] == [tuple(ids)]


def test_each_test_gets_a_fresh_simulator(connectwise):
    """No state leaks between tests."""
    assert connectwise.fake.batches == []
    with pytest.raises(ValidationError):
        connectwise.client.create_batch("B1", [1])
