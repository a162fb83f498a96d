"""A ConnectWise accounting API simulator for testing integrations without a tenant.

`FakeConnectWise` holds unposted records (invoices, expenses, procurement) and their GL entries,
batches and exports them, checks credentials, answers with ConnectWise's statuses and error
bodies, pages lists (``Link``, forward-only) and filters them with ``conditions``, as ConnectWise's
published definition says (docs/testing.md lists what it models and where each fact comes from).
It injects faults on request: latency, 429 with ``Retry-After``, proxy errors before or after the
batch was created (Cloudflare's 52x), reset connections, lost, trickling and truncated answers.
Reach it in-process (`FakeConnectWise.client`, or ``transport()`` for your own httpx client),
over loopback HTTP or HTTPS (`FakeConnectWise.serve`), from the shell (``cw-glbatch
simulator``), or with the pytest fixture ``connectwise``, which this package registers as a
pytest plugin.
"""

from ._api import SimBatch
from ._asyncio import async_client
from ._fake import FakeConnectWise, LoggedRequest
from ._faults import Fault
from ._respx import route_to_simulator
from ._server import SimulatorServer
from ._simulation import Simulation

__all__ = [
    "FakeConnectWise",
    "Fault",
    "LoggedRequest",
    "SimBatch",
    "Simulation",
    "SimulatorServer",
    "async_client",
    "route_to_simulator",
]
