"""What both ConnectWise clients share: their settings, and every call written once, without I/O.

A call is a generator. It yields a `Send` (a request to put on the wire) or a `Pause` (seconds
to wait before sending again) and is sent back the `Reply` to a `Send`. `ConnectWiseClient`
drives calls with blocking httpx, `AsyncConnectWiseClient` with coroutines; what a request looks
like, whether to send it again, what an answer means and how pages follow each other is decided
here (with `_http` and `_retry`), so the two clients differ only in how they move bytes and wait.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import threading
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import attrs
import httpx

from . import _http
from ._exceptions import ApiError, ClientClosedError, ConfigurationError, NotFoundError
from ._export import GLExport
from ._models import AccountingBatch
from ._preflight import check_client_options
from ._reader import MAX_IDENTIFIER_LENGTH
from ._redact import redact, redact_text
from ._retry import Failure, RequestPacer, Verdict, decide
from ._version import __version__

__all__ = [
    "BATCHES_PATH",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TIMEOUT",
    "EXPORT_PATH",
    "LIMITS",
    "Call",
    "ClientBase",
    "FindPlan",
    "Pager",
    "Pause",
    "Reply",
    "Send",
    "batches_pager",
    "entries_pager",
    "ssl_context",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_PAGE_SIZE = 1000  # ConnectWise's largest page
BATCHES_PATH = "/finance/accounting/batches"
EXPORT_PATH = "/finance/accounting/export"
_MAX_KEPT_BODY = 2000  # characters of a 2xx answer to a create kept when it is not JSON

# Enough kept-alive connections for any sensible concurrency (ConnectWise throttles beyond).
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)

logger = logging.getLogger("cw_glbatch")

T = TypeVar("T")
C = TypeVar("C", bound="ClientBase")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)


@attrs.frozen
class Send:
    """Put one request on the wire and send the call its `Reply`."""

    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str | int] | None = None
    content: bytes | None = None


@attrs.frozen
class Pause:
    """Wait ``seconds`` (with the client's sleep), then resume the call."""

    seconds: float


@attrs.frozen
class Reply:
    """What came back for a `Send`: the response, if one came, and the error that cut it short.

    A body that stops half way still leaves its status (a 2xx to a create means created): the
    response is then given with an empty body together with the error.
    """

    response: httpx.Response | None = None
    failure: httpx.HTTPError | None = None


Call = Generator[Send | Pause, Reply | None, T]


def user_agent() -> str:
    """The User-Agent header every request carries."""
    return f"cw-glbatch/{__version__} httpx/{httpx.__version__}"


def ssl_context(verify: str | os.PathLike[str] | ssl.SSLContext | None) -> ssl.SSLContext | bool:
    """What httpx's ``verify=`` gets: a context from a CA bundle path, or the default (True)."""
    if isinstance(verify, (str, os.PathLike)):
        return ssl.create_default_context(cafile=os.fspath(verify))
    return verify if verify is not None else True


class Pager(Generic[T]):
    """Which page of a list to ask for next, from the answers so far, and its items decoded.

    Follows the ``Link: rel="next"`` header when ConnectWise sends one (this covers forward-only
    paging too), and page numbers otherwise; refuses a link to another server or back to a page
    already read.
    """

    def __init__(
        self,
        root: str,
        path: str,
        params: Mapping[str, str | int],
        decode: Callable[[object, str], T],
    ) -> None:
        self._root = root
        self._path = path
        self._params = params
        self._page_size = int(params["pageSize"])
        self._decode = decode
        self._number = 1
        self._followed: set[str] = set()
        self._previous: object = None
        self.url: str | None = root + path  # None once every page was read

    @property
    def query(self) -> dict[str, str | int] | None:
        """The query of the next request (a next link carries its own)."""
        return {**self._params, "page": self._number} if not self._followed else None

    def read(self, response: httpx.Response) -> list[T]:
        """The items of one page, decoded; moves on to the next page."""
        page = _http.decode_json(response, "GET", self._path)
        if not isinstance(page, list):
            raise ApiError("expected a list", method="GET", path=self._path)
        if page and page == self._previous and not self._followed:  # a server ignoring paging
            raise ApiError(
                f"page {self._number} repeats the page before it; the server ignores paging",
                method="GET",
                path=self._path,
            )
        self._previous = page
        items = [self._decode(item, self._path) for item in page]
        self.url = _http.next_link(response.headers.get("link"))
        if self.url is not None:
            self._check_next_link(self.url)
        elif len(page) == self._page_size and not self._followed:
            self._number += 1
            self.url = self._root + self._path
        return items

    def _check_next_link(self, url: str) -> None:
        """Refuse a next-page link to another server, back to a page already read, or broken."""
        try:  # a header can carry anything: control characters, an unclosed IPv6 bracket, ...
            httpx.URL(url)
            origin = _http.origin_of(url) if url.isascii() and url.isprintable() else None
        except (ValueError, httpx.InvalidURL):
            origin = None
        if origin is None:
            problem = "that is not a valid URL"
        elif origin != _http.origin_of(self._root):
            problem = f"to another server ({origin})"
        elif url in self._followed:
            problem = "back to a page already read"
        else:
            self._followed.add(url)
            return
        raise ApiError(
            f"refusing to follow a next-page link {problem}", method="GET", path=self._path
        )


def batches_pager(
    root: str, conditions: str | None, *, page_size: int, order_by: str | None
) -> Pager[AccountingBatch]:
    """The pager of ``GET /finance/accounting/batches`` with these conditions."""
    if not 1 <= page_size <= DEFAULT_PAGE_SIZE:
        raise ValueError(f"page_size must be 1 to {DEFAULT_PAGE_SIZE}, not {page_size}")
    params: dict[str, str | int] = {"pageSize": page_size}
    if conditions:
        params["conditions"] = conditions
    if order_by:
        params["orderBy"] = order_by
    return Pager(
        root, BATCHES_PATH, params, lambda item, path: _http.decode_batch(item, "GET", path)
    )


def _entry_id(item: object, path: str) -> int:
    entry_id = item.get("id") if isinstance(item, Mapping) else None
    if type(entry_id) is not int:
        raise ApiError(f"an entry without an id: {item!r:.100}", method="GET", path=path)
    return entry_id


def entries_pager(root: str, batch_id: int) -> Pager[int]:
    """The pager of a batch's entry ids (``GET /finance/accounting/batches/{id}/entries``).

    ConnectWise's ``BatchEntry`` has an ``id`` and no other id field; this library takes it to
    be the GL entry's id (an assumption, see docs/reliability.md).
    """
    path = f"{BATCHES_PATH}/{int(batch_id)}/entries"
    return Pager(root, path, {"pageSize": DEFAULT_PAGE_SIZE, "fields": "id"}, _entry_id)


@attrs.frozen
class FindPlan:
    r"""How to find batches by identifier: ``conditions`` to ask, and ``odd`` ones to list for.

    ConnectWise documents no escape for quotes inside ``conditions``, so identifiers holding
    ``"``, ``'`` or ``\`` are never put in one: they are found by listing the batches matching
    ``listing`` (ids above ``min_id``) and comparing in Python.
    """

    conditions: list[str]
    odd: frozenset[str]
    listing: str

    @classmethod
    def of(cls, identifiers: Iterable[str], min_id: int | None) -> FindPlan:
        """The plan for ``identifiers`` among the batches with an id above ``min_id``."""
        wanted = list(dict.fromkeys(identifiers))
        plain = [i for i in wanted if _http.is_condition_safe(i)]
        conditions = _http.identifier_conditions(plain, min_id=min_id)
        return cls(conditions, frozenset(wanted).difference(plain), f"id > {min_id or 0}")


class ClientBase:
    """Settings and calls of a ConnectWise client; subclasses only move bytes and wait."""

    def __init__(
        self,
        *,
        site: str | None,
        base_url: str | None,
        company_id: str,
        public_key: str,
        private_key: str,
        client_id: str,
        codebase: str | None,
        timeout: float,
        max_retries: int,
        api_version: str | None,
        max_requests_per_minute: float | None,
        allow_insecure_http: bool,
        max_answer_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        missing = [
            name
            for name, value in (
                ("company_id", company_id),
                ("public_key", public_key),
                ("private_key", private_key),
                ("client_id", client_id),
            )
            if not (value or "").strip()
        ]
        if missing:
            raise ConfigurationError(f"missing or empty: {', '.join(missing)}")
        if (site is None) == (base_url is None):
            raise ConfigurationError("give exactly one of site= and base_url=")
        check_client_options(
            timeout=timeout,
            max_retries=max_retries,
            max_requests_per_minute=max_requests_per_minute,
            max_answer_bytes=max_answer_bytes,
            client_id=client_id,
        )
        self._api_root: str | None = None
        if base_url is not None:
            self._api_root = base_url.rstrip("/")
            self._origin = _http.origin_of(self._api_root)
        else:
            site = site or ""
            self._origin = _http.origin_of(site if "://" in site else f"https://{site}")
            if codebase:
                self._api_root = f"{self._origin}/{codebase.strip('/')}/apis/3.0"
        if self._origin.startswith("http://") and not (
            allow_insecure_http or _http.is_loopback(self._origin)
        ):
            raise ConfigurationError(
                f"{self._origin} is plain HTTP: credentials would cross the network unencrypted. "
                "Use an https:// address (the cw-glbatch command accepts plain HTTP only to this "
                "machine); from Python, pass allow_insecure_http=True if you really mean it."
            )
        if not self._origin.startswith(("http://", "https://")):
            raise ConfigurationError(f"{self._origin}: only https:// (or http://) URLs are allowed")

        self.company_id = company_id
        self._timeout = timeout
        self._max_answer_bytes = max_answer_bytes
        self._max_retries = max_retries
        self._rng = random.random  # spreads backoff waits; not for security
        self._pacer = (
            RequestPacer(max_requests_per_minute, clock=clock) if max_requests_per_minute else None
        )
        self._count_lock = threading.Lock()
        self._requests_sent = 0
        auth = _http.auth_headers(company_id, public_key, private_key, client_id)
        # What a server must never be able to echo into a message, a log or a file.
        self._secrets = (auth["Authorization"].removeprefix("Basic "), private_key, client_id)
        self._headers = {
            **auth,
            "Accept": (
                f"application/vnd.connectwise.com+json; version={api_version}"
                if api_version
                else "application/json"
            ),
            "User-Agent": user_agent(),
        }
        self._post_headers = {**self._headers, "Content-Type": "application/json"}

    @classmethod
    def from_env(cls: type[C], environ: Mapping[str, str] | None = None, **options: Any) -> C:
        """A client configured from environment variables.

        Reads ``CW_SITE`` or ``CW_BASE_URL``, ``CW_COMPANY_ID``, ``CW_PUBLIC_KEY``,
        ``CW_PRIVATE_KEY``, ``CW_CLIENT_ID`` and, optionally, ``CW_CODEBASE`` and
        ``CW_API_VERSION``. Other keyword arguments of the constructor may be given too.

        Raises:
            ConfigurationError: Naming every variable that is missing.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        missing = [
            name
            for name in ("CW_COMPANY_ID", "CW_PUBLIC_KEY", "CW_PRIVATE_KEY", "CW_CLIENT_ID")
            if not get(name)
        ]
        if not get("CW_SITE") and not get("CW_BASE_URL"):
            missing.insert(0, "CW_SITE (or CW_BASE_URL)")
        if missing:
            raise ConfigurationError(
                f"missing environment variables: {', '.join(missing)}. "
                "Set them to the ConnectWise API member's credentials."
            )
        config: dict[str, Any] = {
            "site": None if get("CW_BASE_URL") else get("CW_SITE"),
            "base_url": get("CW_BASE_URL"),
            "company_id": get("CW_COMPANY_ID"),
            "public_key": get("CW_PUBLIC_KEY"),
            "private_key": get("CW_PRIVATE_KEY"),
            "client_id": get("CW_CLIENT_ID"),
            "codebase": get("CW_CODEBASE"),
            "api_version": get("CW_API_VERSION"),
        }
        return cls(**{**config, **options})

    def _describe(self, closed: bool) -> str:
        where = self._api_root or self._origin
        state = ", closed" if closed else ""
        return f"{type(self).__name__}({where!r}, company_id={self.company_id!r}{state})"

    def _received(self, response: httpx.Response, content: bytes) -> httpx.Response:
        """``response`` with its body ``content`` (decoded, read whole), every secret redacted."""
        headers = [  # as received (bytes: a server may send any), the body now decoded
            (name, value)
            for name, value in response.headers.raw
            if name.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=redact(content, self._secrets),
            request=response.request,
        )

    @property
    def requests_sent(self) -> int:
        """How many HTTP requests this client has sent, retries included."""
        return self._requests_sent

    @property
    def origin(self) -> str:
        """The ConnectWise server this client talks to: ``scheme://host[:port]``."""
        return self._origin

    def _build_request(self, http: H | None, step: Send) -> tuple[H, httpx.Request]:
        """The httpx request for ``step``; `ClientClosedError` once the client is closed."""
        if http is None:
            raise ClientClosedError(f"this {type(self).__name__} is closed")
        return http, http.build_request(
            step.method,
            step.url,
            params=step.params,
            content=step.content,
            headers=step.headers,
            timeout=self._timeout,
        )

    # -- the calls -------------------------------------------------------------------------

    def _create_batch_call(
        self,
        identifier: str,
        gl_rec_ids: Iterable[int],
        *,
        export_invoices: bool,
        export_expenses: bool,
        export_products: bool,
        summarize_expenses: bool | None,
        gl_interface_identifier: str | None,
    ) -> Call[GLExport]:
        """Checks the arguments now (before any request), and gives the call."""
        ids = tuple(gl_rec_ids)
        if not identifier or len(identifier) > MAX_IDENTIFIER_LENGTH:
            raise ValueError(
                f"identifier must be 1 to {MAX_IDENTIFIER_LENGTH} characters, not {identifier!r}"
            )
        if not ids:
            raise ValueError("a batch needs at least one GL entry id")
        body = _http.batch_body(
            identifier,
            ids,
            export_invoices=export_invoices,
            export_expenses=export_expenses,
            export_products=export_products,
            summarize_expenses=summarize_expenses,
            gl_interface_identifier=gl_interface_identifier,
        )
        return self._create_batch(identifier, ids, body)

    def _create_batch(self, identifier: str, ids: tuple[int, ...], body: bytes) -> Call[GLExport]:
        response = yield from self._request("POST", BATCHES_PATH, content=body)
        # Any 2xx means created, even when a proxy replaced the body: keep what came.
        try:
            data = _http.json_value(response.content) if response.content else {}
        except ValueError:
            data = {"body": response.text[:_MAX_KEPT_BODY]}
        try:
            return _http.decode_export(data, "POST", BATCHES_PATH, batch_identifier=identifier)
        except ApiError as err:  # created all the same
            logger.warning("created batch %r; its answer could not be read: %s", identifier, err)
            return GLExport((), identifier, data if isinstance(data, Mapping) else {"body": data})

    def _export_gl_call(self, **options: Any) -> Call[GLExport]:
        """Checks the arguments now (before any request; `ValueError`), and gives the call."""
        identifier = options.get("batch_identifier")
        if identifier is not None and len(identifier) > MAX_IDENTIFIER_LENGTH:
            raise ValueError(f"batch_identifier is longer than {MAX_IDENTIFIER_LENGTH} characters")
        return self._export(EXPORT_PATH, _http.export_body(**options))

    def _export_batch_call(self, batch_id: int) -> Call[GLExport]:
        return self._export(f"{BATCHES_PATH}/{int(batch_id)}/export", _http.export_body())

    def _export(self, path: str, body: bytes) -> Call[GLExport]:
        """An export changes nothing in ConnectWise: it is sent again as a read would be."""
        response = yield from self._request("POST", path, content=body, read_only=True)
        return _http.decode_export(_http.decode_json(response, "POST", path), "POST", path)

    def _get_batch_call(self, batch_id: int) -> Call[AccountingBatch]:
        path = f"{BATCHES_PATH}/{int(batch_id)}"
        response = yield from self._request("GET", path)
        return _http.decode_batch(_http.decode_json(response, "GET", path), "GET", path)

    def _delete_batch_call(self, batch_id: int) -> Call[None]:
        yield from self._request("DELETE", f"{BATCHES_PATH}/{int(batch_id)}")

    def _highest_batch_id_call(self) -> Call[int]:
        params: dict[str, str | int] = {"orderBy": "id desc", "pageSize": 1, "fields": "id"}
        response = yield from self._request("GET", BATCHES_PATH, params=params)
        page = _http.decode_json(response, "GET", BATCHES_PATH)
        if not isinstance(page, list):
            raise ApiError("expected a list of batches", method="GET", path=BATCHES_PATH)
        return _http.decode_batch(page[0], "GET", BATCHES_PATH).id if page else 0

    def _page_call(self, pager: Pager[T]) -> Call[list[T]]:
        """The next page of ``pager``'s list."""
        response = yield from self._request("GET", pager.url or "", params=pager.query)
        return pager.read(response)

    # -- sending ---------------------------------------------------------------------------

    def _discover_api_root_call(self) -> Call[str]:
        path = _http.COMPANY_INFO_PATH + quote(self.company_id, safe="")
        unknown = (
            f"ConnectWise at {urlsplit(self._origin).netloc} does not know the company id "
            f"{self.company_id!r}"
        )
        try:
            response = yield from self._exchange(
                "GET", self._origin + path, path, headers={"User-Agent": user_agent()}
            )
        except NotFoundError as err:
            raise NotFoundError(
                unknown, method="GET", path=path, status=err.status, code=err.code
            ) from err
        info = _http.decode_json(response, "GET", path)
        codebase = info.get("Codebase") if isinstance(info, Mapping) else None
        if not isinstance(codebase, str) or not codebase.strip("/"):
            raise NotFoundError(
                f"{unknown}; its company info has no Codebase (or pass codebase= or base_url=)",
                method="GET",
                path=path,
                status=response.status_code,
            )
        return f"{self._origin}/{codebase.strip('/')}/apis/3.0"

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        read_only: bool = False,
    ) -> Call[httpx.Response]:
        root = self._api_root
        if root is None:  # (the clients look it up first, once, under a lock)
            root = self._api_root = yield from self._discover_api_root_call()
        if path_or_url.startswith(("http://", "https://")):
            url = path_or_url
            path = urlsplit(url).path.removeprefix(urlsplit(root).path) or "/"
        else:
            url, path = root + path_or_url, path_or_url
        headers = self._post_headers if content is not None else self._headers
        return (
            yield from self._exchange(
                method,
                url,
                path,
                params=params,
                content=content,
                headers=headers,
                read_only=read_only,
            )
        )

    def _exchange(
        self,
        method: str,
        url: str,
        path: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        read_only: bool = False,
    ) -> Call[httpx.Response]:
        """Send one request until `_retry.decide` says it is answered, failed, or unknown.

        ``read_only``: a POST that changes nothing (an export), decided as a GET is.
        """
        attempt = 0
        while True:
            reply = yield Send(method, url, headers, params, content)
            with self._count_lock:
                self._requests_sent += 1
            response, failure = (reply.response, reply.failure) if reply else (None, None)
            if response is None and failure is None:
                raise RuntimeError("a Send was answered with nothing")  # a driver's bug
            status = response.status_code if response is not None else None
            retry_after = None
            if response is not None:
                retry_after = _http.retry_after_seconds(response.headers.get("retry-after"))
            # A read answered 2xx with a body that is not JSON (a proxy's page) was not read.
            unreadable = (
                (method == "GET" or read_only)
                and failure is None
                and response is not None
                and response.status_code < 300
                and not _http.is_json(response.content)
            )
            decision = decide(
                method,
                status,
                failure=Failure.AFTER_SENDING
                if unreadable
                else (
                    _http.transport_failure(failure, answered=response is not None)
                    if failure
                    else None
                ),
                attempt=attempt,
                max_retries=self._max_retries,
                retry_after=retry_after,
                jitter=self._rng(),
                read_only=read_only,
            )
            unknown = decision.verdict is Verdict.OUTCOME_UNKNOWN
            if decision.verdict is Verdict.RETURN and response is not None:
                return response
            if decision.verdict is not Verdict.RETRY:
                if unreadable and response is not None:
                    _http.decode_json(response, method, path)  # raises, saying what came
                if failure is not None and (response is None or response.status_code < 300):
                    raise _http.transport_error(
                        method,
                        path,
                        failure,
                        self._timeout,
                        outcome_unknown=unknown,
                        host=urlsplit(url).netloc,
                        secrets=self._secrets,
                    ) from failure
                if response is not None:
                    raise _http.error_for_response(
                        method,
                        path,
                        response.status_code,
                        response.headers,
                        b"" if failure else response.content,
                        outcome_unknown=unknown,
                    )
            reason = f"HTTP {status}" if status is not None else f"{type(failure).__name__}"
            reason += " (not JSON)" if unreadable else ""
            if failure is not None:
                reason += f" ({redact_text(str(failure), self._secrets)})"
            attempt += 1
            logger.info(
                "%s %s: %s; retry %d of %d in %.2f s",
                method,
                path,
                reason,
                attempt,
                self._max_retries,
                decision.wait,
            )
            yield Pause(decision.wait)
