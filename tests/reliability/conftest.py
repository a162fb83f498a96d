"""Fixtures for the reliability tests."""

from __future__ import annotations

import pytest

from tests.helpers import check_invariants


@pytest.fixture
def invariants():
    """The check that every reliability test makes after a run: nothing lost, nothing doubled."""
    return check_invariants
