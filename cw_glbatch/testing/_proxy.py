"""Error answers of the kind a fault injects: a proxy's HTML page, ConnectWise's JSON bodies."""

from __future__ import annotations

from ._api import Response, error_body
from ._faults import PROXY_STATUSES

__all__ = ["fault_response"]

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
        body = error_body("TooManyRequests", "Too many requests; slow down")
    else:
        body = error_body("ConnectWiseApi", "An error occurred (simulated)")
    return Response(status, body, headers)
