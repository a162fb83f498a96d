"""ConnectWiseClient: the accounting-batch calls of the ConnectWise PSA REST API, over httpx.

The client moves bytes and sleeps; what a request looks like and what a response means is
decided in `_http` and `_retry`.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from . import _http
from ._bounds import DEFAULT_MAX_ANSWER_BYTES, bound_transports, deadline, read_answer
from ._exceptions import ApiError, ClientClosedError, ConfigurationError, NotFoundError
from ._models import AccountingBatch, GLExport
from ._preflight import check_client_options
from ._reader import MAX_IDENTIFIER_LENGTH
from ._redact import redact, redact_text
from ._retry import Failure, RequestPacer, Verdict, decide
from ._version import __version__

__all__ = [
    "BATCHES_PATH",
    "DEFAULT_MAX_ANSWER_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TIMEOUT",
    "ConnectWiseClient",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_PAGE_SIZE = 1000  # ConnectWise's largest page
BATCHES_PATH = "/finance/accounting/batches"
_MAX_KEPT_BODY = 2000  # characters of a 2xx answer to a create kept when it is not JSON

logger = logging.getLogger("cw_glbatch")

# Enough kept-alive connections for any sensible concurrency (ConnectWise throttles beyond).
_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)


def _user_agent() -> str:
    return f"cw-glbatch/{__version__} httpx/{httpx.__version__}"


class ConnectWiseClient:
    """A client for ConnectWise PSA's accounting-batch API.

    Give either ``site`` (the server's host; the API root is looked up once from
    ``/login/companyinfo/{company_id}`` unless ``codebase`` is given) or ``base_url`` (the full
    API root). All arguments are keyword-only.

    Args:
        site: Host of the ConnectWise server, e.g. ``api-na.myconnectwise.net``; a
            ``scheme://`` prefix and a port are allowed.
        base_url: The full API root, e.g. ``https://host/v4_6_release/apis/3.0``.
        company_id: The company id used to log in.
        public_key: The API member's public key.
        private_key: The API member's private key. Never logged, shown or put in errors.
        client_id: The integration's ``clientId`` (from the ConnectWise developer portal).
        codebase: The codebase (``v2025_1/``) when known; skips the lookup.
        timeout: Seconds allowed for each request, from sending it to the last byte of the
            answer (a finite number above 0). A POST that runs out of it has an unknown
            outcome.
        max_retries: How many times a failed request may be sent again when that is safe.
        http_client: An `httpx.Client` to send requests with; the caller keeps ownership and
            closes it. Its base URL and authentication are not used.
        transport: An httpx transport for a client this object creates and owns
            (``FakeConnectWise().transport()`` in tests).
        api_version: Sent as ``Accept: application/vnd.connectwise.com+json; version=...``.
        max_requests_per_minute: A ceiling on the request rate, shared by all threads using
            this client, to stay under ConnectWise's throttling.
        allow_insecure_http: Allow ``http://`` to a host that is not this machine.
        verify: A CA bundle path or an `ssl.SSLContext` to verify the server's certificate with,
            instead of the default trust store. Verification cannot be turned off.
        max_answer_bytes: The largest decoded answer accepted; a larger one cannot be used
            (a create answered 2xx is still created). ConnectWise's answers are far smaller.
        sleep: The function used to wait between retries and for the request ceiling (tests
            pass a fake).
        clock: The monotonic clock the request ceiling reads (tests pass a fake).

    Raises:
        ConfigurationError: A required argument is missing or empty, or the URL is unsafe.
    """

    def __init__(
        self,
        *,
        site: str | None = None,
        base_url: str | None = None,
        company_id: str,
        public_key: str,
        private_key: str,
        client_id: str,
        codebase: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        api_version: str | None = None,
        max_requests_per_minute: float | None = None,
        allow_insecure_http: bool = False,
        verify: str | os.PathLike[str] | ssl.SSLContext | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
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
        if http_client is not None and (transport is not None or verify is not None):
            raise ConfigurationError("give transport= or verify= only without http_client=")
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
        self._sleep = sleep
        self._rng = random.random  # spreads backoff waits; not for security
        self._pacer = (
            RequestPacer(max_requests_per_minute, clock=clock, sleep=sleep)
            if max_requests_per_minute
            else None
        )
        self._root_lock = threading.Lock()
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
            "User-Agent": _user_agent(),
        }
        self._post_headers = {**self._headers, "Content-Type": "application/json"}
        if http_client is not None:
            self._http: httpx.Client | None = http_client
            self._owns_http = False
        else:
            if isinstance(verify, (str, os.PathLike)):
                verify = ssl.create_default_context(cafile=os.fspath(verify))
            self._http = httpx.Client(
                transport=transport,
                timeout=timeout,
                verify=verify if verify is not None else True,
                limits=_LIMITS,
            )
            self._owns_http = True
        # Outside this client's requests (no deadline set in the thread) the wrapped sockets
        # behave as before, so a caller's own httpx.Client is bounded only while we use it.
        bound_transports(self._http)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **options: Any
    ) -> ConnectWiseClient:
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

    def __repr__(self) -> str:
        where = self._api_root or self._origin
        state = "" if self._http is not None else ", closed"
        return f"ConnectWiseClient({where!r}, company_id={self.company_id!r}{state})"

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections this client opened. Closing again does nothing."""
        http, self._http = self._http, None
        if http is not None and self._owns_http:
            http.close()

    def __enter__(self) -> ConnectWiseClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the accounting calls --------------------------------------------------------------

    @property
    def requests_sent(self) -> int:
        """How many HTTP requests this client has sent, retries included."""
        return self._requests_sent

    @property
    def origin(self) -> str:
        """The ConnectWise server this client talks to: ``scheme://host[:port]``."""
        return self._origin

    @property
    def api_root(self) -> str:
        """The API root, e.g. ``https://host/v2025_1/apis/3.0`` (looked up on first use)."""
        if self._api_root is None:
            with self._root_lock:
                if self._api_root is None:
                    self._api_root = self._discover_api_root()
        return self._api_root

    def create_batch(
        self,
        identifier: str,
        gl_rec_ids: Iterable[int],
        *,
        export_invoices: bool = True,
        export_expenses: bool = True,
        export_products: bool = True,
        summarize_expenses: bool | None = None,
        gl_interface_identifier: str | None = None,
    ) -> GLExport:
        """Create a GL batch holding ``gl_rec_ids``, labelled ``identifier``.

        Returns:
            ConnectWise's answer: the GL export of the batch's transactions (no batch id).

        Raises:
            OutcomeUnknownError: The request was sent but its outcome is unknown (no answer,
                408, or a 5xx other than 503, 521, 522, 523, 525, 526); it is not sent again.
                Look the identifier up before deciding to retry.
            ValidationError: ConnectWise refused the batch (e.g. an id already batched).
            ApiError: Any other failure, after the retries that were safe.
        """
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
        response = self._request("POST", BATCHES_PATH, content=body)
        # Any 2xx means created, even when a proxy replaced the body: keep what came.
        try:
            data = _http.json_value(response.content) if response.content else {}
        except ValueError:
            data = {"body": response.text[:_MAX_KEPT_BODY]}
        return GLExport(identifier, ids, data if isinstance(data, Mapping) else {"body": data})

    def get_batch(self, batch_id: int) -> AccountingBatch:
        """The batch with ConnectWise id ``batch_id``; `NotFoundError` if there is none."""
        path = f"{BATCHES_PATH}/{int(batch_id)}"
        return _http.decode_batch(
            _http.decode_json(self._request("GET", path), "GET", path), "GET", path
        )

    def delete_batch(self, batch_id: int) -> None:
        """Delete the batch with ConnectWise id ``batch_id``, which frees its GL entries."""
        self._request("DELETE", f"{BATCHES_PATH}/{int(batch_id)}")

    def list_batches(
        self,
        conditions: str | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        order_by: str | None = None,
    ) -> Iterator[AccountingBatch]:
        """Every batch matching ``conditions`` (ConnectWise's syntax), fetching page by page.

        Follows the ``Link: rel="next"`` header when ConnectWise sends one (this covers
        forward-only paging too), and page numbers otherwise.
        """
        if not 1 <= page_size <= DEFAULT_PAGE_SIZE:
            raise ValueError(f"page_size must be 1 to {DEFAULT_PAGE_SIZE}, not {page_size}")
        params: dict[str, str | int] = {"pageSize": page_size}
        if conditions:
            params["conditions"] = conditions
        if order_by:
            params["orderBy"] = order_by
        for item in self._list(BATCHES_PATH, params):
            yield _http.decode_batch(item, "GET", BATCHES_PATH)

    def find_batches(
        self, identifiers: Iterable[str], *, min_id: int | None = None
    ) -> list[AccountingBatch]:
        r"""The batches whose identifier is one of ``identifiers``, in few requests.

        Asks ``batchIdentifier in (...)`` in chunks that keep each URL short. ConnectWise
        documents no escape for quotes inside ``conditions``, so identifiers holding ``"``,
        ``'`` or ``\`` are never put in one: they are found by listing the batches with an id
        above ``min_id`` (all batches without it) and comparing in Python. With ``min_id``, only
        batches with a greater id (created after the batch ``min_id``).
        """
        wanted = set(identifiers)
        plain = [i for i in dict.fromkeys(identifiers) if _http.is_condition_safe(i)]
        found: list[AccountingBatch] = []
        for condition in _http.identifier_conditions(plain, min_id=min_id):
            found.extend(self.list_batches(condition))
        if len(plain) < len(wanted):
            listing = self.list_batches(f"id > {min_id or 0}", order_by="id asc")
            odd = wanted.difference(plain)
            found.extend(batch for batch in listing if batch.batch_identifier in odd)
        return found

    def batch_entry_ids(self, batch_id: int) -> list[int]:
        """The ``id`` of every entry of batch ``batch_id`` (``GET /batches/{id}/entries``).

        ConnectWise's ``BatchEntry`` has an ``id`` and no other id field; this library takes it
        to be the GL entry's id (an assumption, see docs/reliability.md).
        """
        path = f"{BATCHES_PATH}/{int(batch_id)}/entries"
        ids = []
        for item in self._list(path, {"pageSize": DEFAULT_PAGE_SIZE, "fields": "id"}):
            entry_id = item.get("id") if isinstance(item, Mapping) else None
            if type(entry_id) is not int:
                raise ApiError(f"an entry without an id: {item!r:.100}", method="GET", path=path)
            ids.append(entry_id)
        return ids

    def _list(self, path: str, params: Mapping[str, str | int]) -> Iterator[Any]:
        """The items of every page of the list at ``path``.

        Follows the ``Link: rel="next"`` header when ConnectWise sends one (this covers
        forward-only paging too), and page numbers otherwise.
        """
        page_size = int(params["pageSize"])
        number = 1
        url: str | None = self.api_root + path
        followed: set[str] = set()
        previous: object = None
        while url is not None:
            # A next link carries its own query; params would replace it.
            query = {**params, "page": number} if not followed else None
            response = self._request("GET", url, params=query)
            page = _http.decode_json(response, "GET", path)
            if not isinstance(page, list):
                raise ApiError("expected a list", method="GET", path=path)
            if page and page == previous and not followed:  # a server ignoring page numbers
                raise ApiError(
                    f"page {number} repeats the page before it; the server ignores paging",
                    method="GET",
                    path=path,
                )
            previous = page
            yield from page
            url = _http.next_link(response.headers.get("link"))
            if url is not None:
                self._check_next_link(url, followed, path)
            elif len(page) == page_size and not followed:
                number += 1
                url = self.api_root + path

    def highest_batch_id(self) -> int:
        """The largest batch id that exists now, 0 when there is none.

        Ids only grow, so batches created later all have a greater id (see ``find_batches``).
        """
        params: dict[str, str | int] = {"orderBy": "id desc", "pageSize": 1, "fields": "id"}
        page = _http.decode_json(
            self._request("GET", BATCHES_PATH, params=params), "GET", BATCHES_PATH
        )
        if not isinstance(page, list):
            raise ApiError("expected a list of batches", method="GET", path=BATCHES_PATH)
        return _http.decode_batch(page[0], "GET", BATCHES_PATH).id if page else 0

    # -- sending ---------------------------------------------------------------------------

    def _discover_api_root(self) -> str:
        path = _http.COMPANY_INFO_PATH + quote(self.company_id, safe="")
        unknown = (
            f"ConnectWise at {urlsplit(self._origin).netloc} does not know the company id "
            f"{self.company_id!r}"
        )
        try:
            response = self._send(
                "GET", self._origin + path, path, headers={"User-Agent": _user_agent()}
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
    ) -> httpx.Response:
        if path_or_url.startswith(("http://", "https://")):
            url = path_or_url
            path = urlsplit(url).path.removeprefix(urlsplit(self.api_root).path) or "/"
        else:
            url, path = self.api_root + path_or_url, path_or_url
        headers = self._post_headers if content is not None else self._headers
        return self._send(method, url, path, params=params, content=content, headers=headers)

    def _send(
        self,
        method: str,
        url: str,
        path: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            http = self._http
            if http is None:
                raise ClientClosedError("this ConnectWiseClient is closed")
            if self._pacer is not None:
                self._pacer.wait()
            request = http.build_request(
                method, url, params=params, content=content, headers=headers, timeout=self._timeout
            )
            with self._count_lock:
                self._requests_sent += 1
            response, failure = self._exchange(http, request)
            status = response.status_code if response is not None else None
            retry_after = None
            if response is not None:
                retry_after = _http.retry_after_seconds(response.headers.get("retry-after"))
            # A read answered 2xx with a body that is not JSON (a proxy's page) was not read.
            unreadable = (
                method == "GET"
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
            self._sleep(decision.wait)

    def _exchange(
        self, http: httpx.Client, request: httpx.Request
    ) -> tuple[httpx.Response | None, httpx.HTTPError | None]:
        """Send ``request``: the response, if one came, and the error that cut it short, if any.

        The answer is read whole within the deadline and the size cap. A body that stops half
        way, or cannot be used, still leaves its status (a 2xx to a create means created); the
        response returned then has an empty body. Every known secret is redacted from the
        answer before anything reads it.
        """
        expires = time.monotonic() + self._timeout
        failure: httpx.HTTPError | None = None
        with deadline(expires):
            try:
                response = http.send(request, follow_redirects=False, stream=True)
            except httpx.HTTPError as err:
                return None, err
            try:
                content = read_answer(response, limit=self._max_answer_bytes, expires=expires)
            except httpx.HTTPError as err:
                content, failure = b"", err
            finally:
                response.close()
        headers = [  # as received (bytes: a server may send any), the body now decoded
            (name, value)
            for name, value in response.headers.raw
            if name.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")
        ]
        answer = httpx.Response(
            response.status_code,
            headers=headers,
            content=redact(content, self._secrets),
            request=request,
        )
        return answer, failure

    def _check_next_link(self, url: str, followed: set[str], path: str) -> None:
        """Refuse a next-page link to another server, back to a page already read, or broken."""
        try:  # a header can carry anything: control characters, an unclosed IPv6 bracket, ...
            httpx.URL(url)
            origin = _http.origin_of(url) if url.isascii() and url.isprintable() else None
        except (ValueError, httpx.InvalidURL):
            origin = None
        if origin is None:
            problem = "that is not a valid URL"
        elif origin != _http.origin_of(self.api_root):
            problem = f"to another server ({origin})"
        elif url in followed:
            problem = "back to a page already read"
        else:
            followed.add(url)
            return
        raise ApiError(f"refusing to follow a next-page link {problem}", method="GET", path=path)
