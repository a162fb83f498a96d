"""What the ``connectwise`` pytest fixture yields, importable without pytest."""

from __future__ import annotations

import attrs

from cw_glbatch._client import ConnectWiseClient

from ._fake import FakeConnectWise

__all__ = ["Simulation"]


@attrs.frozen
class Simulation:
    """A simulator and a client wired to it (what the ``connectwise`` fixture gives a test).

    Attributes:
        fake: A fresh `FakeConnectWise` (no entries, no batches, no faults).
        client: A `ConnectWiseClient` wired to it in-process, retries without sleeping.
    """

    fake: FakeConnectWise
    client: ConnectWiseClient
