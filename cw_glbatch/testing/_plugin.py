"""The pytest plugin: a ``connectwise`` fixture with a fresh simulator and a ready client."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest

from cw_glbatch._client import ConnectWiseClient

from ._fake import FakeConnectWise

__all__ = ["Simulation", "connectwise"]


@attrs.frozen
class Simulation:
    """What the ``connectwise`` fixture gives a test.

    Attributes:
        fake: A fresh `FakeConnectWise` (no entries, no batches, no faults).
        client: A `ConnectWiseClient` wired to it in-process, retries without sleeping.
    """

    fake: FakeConnectWise
    client: ConnectWiseClient


@pytest.fixture
def connectwise() -> Iterator[Simulation]:
    """A fresh ConnectWise simulator and a client connected to it."""
    fake = FakeConnectWise()
    with fake.client() as client:
        yield Simulation(fake, client)
