"""One line to let a respx mock answer ConnectWise requests from the simulator.

respx is imported only by type checkers here: the package works without it installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._fake import FakeConnectWise

if TYPE_CHECKING:
    import respx

__all__ = ["route_to_simulator"]


def route_to_simulator(
    router: respx.Router, fake: FakeConnectWise, *, host: str | None = None
) -> respx.Route:
    """Answer every request ``router`` intercepts (only those to ``host``, if given) from ``fake``.

    The simulator serves any host: the company info lookup, then the API below its codebase.
    Sync and async httpx clients alike are answered, faults included.

    Example::

        def test_my_sync(respx_mock, connectwise):
            route_to_simulator(respx_mock, connectwise.fake)
            client = ConnectWiseClient(site="eu.myconnectwise.net", **connectwise.fake.credentials)
            ...

    Args:
        router: respx's router, e.g. the ``respx_mock`` fixture or ``respx.mock``.
        fake: The simulator that answers.
        host: Route only requests to this host (e.g. ``"eu.myconnectwise.net"``).

    Returns:
        The respx route, for its ``calls`` and ``call_count``.
    """
    route = router.route(host=host) if host is not None else router.route()
    return route.mock(side_effect=fake.transport().handle_request)
