"""The pytest plugin: a ``connectwise`` fixture with a fresh simulator and a ready client.

Only pytest imports this module (through the ``pytest11`` entry point); nothing else in the
package may, so that the library and the simulator run without pytest installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._fake import FakeConnectWise
from ._simulation import Simulation

__all__ = ["connectwise"]


@pytest.fixture
def connectwise() -> Iterator[Simulation]:
    """A fresh ConnectWise simulator and a client connected to it."""
    fake = FakeConnectWise()
    with fake.client() as client:
        yield Simulation(fake, client)
