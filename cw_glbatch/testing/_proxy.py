"""What a fault makes of an answer: a proxy's HTML page, ConnectWise's JSON error, a cut."""

from __future__ import annotations

import attrs

from ._faults import PROXY_STATUSES, Fault
from ._wire import TOO_MANY_REQUESTS, Dropped, Response, error_body

__all__ = ["after_acting", "fault_response"]

_CLOUDFLARE_TITLES = {
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    523: "Origin is unreachable",
    524: "A timeout occurred",
    525: "SSL handshake failed",
    526: "Invalid SSL certificate",
}


def _proxy_page(status: int) -> bytes:
    title = _CLOUDFLARE_TITLES.get(status, "Service Error")
    return (
        "<!DOCTYPE html>\n<html><head><title>"
        f"{status}: {title}</title></head><body><h1>Error {status}</h1>"
        f"<p>{title}</p></body></html>\n"
    ).encode()


def fault_response(status: int, retry_after: float | None) -> Response:
    """The answer to an injected ``status``: HTML from a proxy, else ConnectWise's JSON."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    if status in PROXY_STATUSES:
        return Response(status, None, {**headers, "Content-Type": "text/html"}, _proxy_page(status))
    if status == 429:
        return Response(status, TOO_MANY_REQUESTS, headers)
    return Response(
        status,
        error_body("ConnectWiseApi", "An error occurred, please contact your administrator"),
        headers,
    )


def after_acting(fault: Fault, answer: Response) -> Response | Dropped:
    """What the client gets instead of ``answer`` when ``fault`` strikes after the server acted."""
    if fault.kind == "committed":
        if fault.body is None:
            return fault_response(fault.status_code, None)
        return Response(fault.status_code, None, {"Content-Type": "text/html"}, fault.body)
    if fault.kind == "trickle":
        return attrs.evolve(answer, chunk=fault.chunk, delay=fault.delay)
    if fault.kind == "truncated":
        return attrs.evolve(answer, truncated=True)
    return Dropped("lost")
