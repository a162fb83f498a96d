"""Shared fixtures for the cw_glbatch tests."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def samples() -> Path:
    """The folder of sample input files."""
    return SAMPLES
