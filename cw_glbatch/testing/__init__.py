"""A ConnectWise accounting API simulator for testing integrations without a tenant.

`FakeConnectWise` holds unposted GL entries and batches, checks credentials, answers with
ConnectWise's error bodies, pages lists and filters them with ``conditions``, and injects
faults on request: latency, 429 with ``Retry-After``, 5xx, reset connections and answers lost
after the batch was created. Reach it in-process (`FakeConnectWise.client`, or ``transport()``
for your own httpx client), over loopback HTTP (`FakeConnectWise.serve`), or with the pytest
fixture ``connectwise``, which this package registers as a pytest plugin.
"""

from ._api import SimBatch
from ._fake import FakeConnectWise, LoggedRequest
from ._faults import Fault
from ._server import SimulatorServer
from ._simulation import Simulation

__all__ = [
    "FakeConnectWise",
    "Fault",
    "LoggedRequest",
    "SimBatch",
    "Simulation",
    "SimulatorServer",
]
