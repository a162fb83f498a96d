"""FakeConnectWise: a stateful, thread-safe stand-in for ConnectWise's accounting API."""

from __future__ import annotations

import base64
import datetime
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import httpx

from cw_glbatch._client import ConnectWiseClient

from ._api import ConditionError, SimBatch, State
from ._faults import Fault, FaultPlan
from ._inprocess import answer_in_process
from ._ledger import EntryRole
from ._listing import listing, one_or_list
from ._proxy import after_acting, fault_response
from ._server import SimulatorServer
from ._wire import IN_PROCESS_ORIGIN, Dropped, Response, SimRequest, error_body

__all__ = ["FakeConnectWise", "LoggedRequest"]

DEFAULT_CODEBASE = "v2025_1/"
_BATCHES = "/finance/accounting/batches"
_EXPORT = "/finance/accounting/export"
_BATCH = re.compile(r"/finance/accounting/batches/(\d+)(/entries(?:/count|/\d+)?|/export)?")
_UNPOSTED = re.compile(
    r"/finance/accounting/unposted(invoices|expenses|procurement)(/count|/\d+)?", re.IGNORECASE
)
_UNPOSTED_KIND = {"invoices": "invoice", "expenses": "expense", "procurement": "procurement"}


@attrs.frozen
class LoggedRequest:
    """One request the simulator received.

    Attributes:
        method: HTTP method.
        path: The path below the API root (``/finance/accounting/batches``), or the full path
            for requests outside it (``/login/companyinfo/acme``).
        query: The query parameters.
        status: The status answered, ``None`` when no answer was sent.
        fault: The kind of fault injected (``"status"``, ``"committed"``, ``"reset"``,
            ``"lost"``, ``"trickle"``, ``"truncated"``), if any.
    """

    method: str
    path: str
    query: Mapping[str, str]
    status: int | None
    fault: str | None = None


class FakeConnectWise:
    """An in-memory ConnectWise accounting API: unposted GL entries, batches, auth, errors.

    Args:
        company_id: The company id clients must log in with.
        public_key: The public key clients must use.
        private_key: The private key clients must use.
        client_id: The ``clientId`` header clients must send.
        codebase: Where the API lives: ``/{codebase}apis/3.0``.
        first_batch_id: The id the first batch gets.
        accounting_access: False makes the accounting endpoints answer 403, as for an API
            member without the Accounting Interface permission.
        sleep: What waits out injected latency and the pauses of a trickling answer.
        clock: What the rate limit reads the time from (seconds, only ever growing).

    Example::

        fake = FakeConnectWise()
        ids = fake.populate(10, seed=1)
        with fake.client() as client:
            client.create_batch("B1", ids[:3])
        assert fake.batches[0].gl_entry_ids == tuple(ids[:3])
    """

    def __init__(
        self,
        *,
        company_id: str = "acme",
        public_key: str = "simulator-public",
        private_key: str = "simulator-private",
        client_id: str = "00000000-0000-4000-8000-000000000000",
        codebase: str = DEFAULT_CODEBASE,
        first_batch_id: int = 1,
        accounting_access: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.company_id = company_id
        self.public_key = public_key
        self.private_key = private_key
        self.client_id = client_id
        self.codebase = codebase.strip("/") + "/"
        self.api_path = f"/{self.codebase}apis/3.0"
        self.accounting_access = accounting_access
        token = base64.b64encode(f"{company_id}+{public_key}:{private_key}".encode()).decode()
        self._authorization = f"Basic {token}"
        self._lock = threading.Lock()
        self._state = State(first_batch_id)
        self._log: list[LoggedRequest] = []
        self.faults = FaultPlan(sleep, clock)

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"FakeConnectWise(company_id={self.company_id!r}, "
                f"entries={len(self._state.ledger.record_of)}, "
                f"batches={len(self._state.batches)})"
            )

    # -- state -----------------------------------------------------------------------------

    def add_unposted(
        self,
        ids: Iterable[int],
        *,
        kind: str = "invoice",
        date: str | None = None,
        location_id: int = 1,
    ) -> None:
        """Add one unposted record of ``kind`` per GL entry id in ``ids``.

        Args:
            ids: GL entry ids, not used yet.
            kind: ``invoice`` (the id is the transaction's ``glEntryIds``), ``expense`` or
                ``procurement``.
            date: The records' date (``YYYY-MM-DD``); default today (UTC).
            location_id: Their ``locationId``.

        Raises:
            ValueError: An id is used already, or ``kind`` is not one of the three.
        """
        day = date or _today()
        role: EntryRole = "header" if kind == "invoice" else "detail"
        entries = tuple(ids)
        reserved = frozenset(entries)  # new record ids keep clear of every GL entry of the call
        with self._lock:
            for entry in entries:
                self._state.ledger.add(
                    kind,
                    [(entry, role, 100.0)],
                    date=day,
                    location_id=location_id,
                    reserved=reserved,
                )

    def add_invoice(
        self,
        gl_entry_ids: Iterable[int],
        *,
        detail_ids: Iterable[int] = (),
        tax_ids: Iterable[int] = (),
        date: str | None = None,
        location_id: int = 1,
    ) -> int:
        """Add an unposted invoice with these GL entries; return its (unposted record) id.

        Its export transaction carries ``gl_entry_ids`` comma-separated in ``glEntryIds``, and
        one ``detail`` line for each of ``detail_ids`` (revenue) and ``tax_ids`` (tax).
        """
        entries: list[tuple[int, EntryRole, float]] = [(i, "header", 100.0) for i in gl_entry_ids]
        entries += [(i, "detail", 100.0) for i in detail_ids]
        entries += [(i, "tax", 8.0) for i in tax_ids]
        with self._lock:
            record = self._state.ledger.add(
                "invoice", entries, date=date or _today(), location_id=location_id
            )
        return record.id

    def populate(self, count: int, *, seed: int = 0, start: int = 320000) -> list[int]:
        """Add unposted records holding ``count`` GL entries from ``start`` on; return their ids.

        Records of random kinds (seeded, repeatable): invoices with one or two ``glEntryIds``,
        detail lines and a tax line, each with its own GL entry id; expenses and procurement
        lines with one each; dated over the last four weeks, at location 1 or 2.
        """
        rng = random.Random(seed)  # nosec B311
        today = datetime.date.fromisoformat(_today())
        dates = [(today - datetime.timedelta(days=n)).isoformat() for n in range(28)]
        with self._lock:
            return self._state.ledger.populate(count, rng, start, dates)

    @property
    def unposted_ids(self) -> frozenset[int]:
        """The GL entries in no batch."""
        with self._lock:
            return frozenset(self._state.unposted)

    @property
    def batches(self) -> list[SimBatch]:
        """Every batch, in id order."""
        with self._lock:
            return [self._state.batches[i] for i in self._state.ids]

    def batch_of(self, gl_entry_id: int) -> SimBatch | None:
        """The batch holding ``gl_entry_id``, if any."""
        with self._lock:
            batch_id = self._state.batch_of.get(gl_entry_id)
            return None if batch_id is None else self._state.batches[batch_id]

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received, in order."""
        with self._lock:
            return list(self._log)

    def count_requests(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched ``method`` and ``path`` (either may be None: any)."""
        with self._lock:
            return sum(
                1
                for r in self._log
                if (method is None or r.method == method) and (path is None or r.path == path)
            )

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self, *faults: Fault | None, method: str | None = None, path: str | None = None
    ) -> None:
        """Apply ``faults`` to the next matching requests, one each, in order (None: no fault)."""
        self.faults.script(faults, method, path)

    def fail_randomly(
        self,
        rates: Mapping[Fault, float],
        *,
        seed: int = 0,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Give each matching request the chance ``rate`` of each fault (seeded, repeatable)."""
        self.faults.randomly(rates, seed, method, path)

    def set_latency(self, seconds: float, *, jitter: float = 0.0, seed: int = 0) -> None:
        """Delay every answer by ``seconds`` (± up to ``jitter``)."""
        self.faults.set_latency(seconds, jitter, seed)

    def set_rate_limit(self, requests: int, *, per: float = 60.0) -> None:
        """Answer 429 (with Retry-After) beyond ``requests`` in any ``per`` seconds; 0: no limit."""
        self.faults.set_rate_limit(requests, per)

    def clear_faults(self) -> None:
        """Remove every fault, the latency and the rate limit."""
        self.faults.clear()

    # -- ways in ---------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        """An httpx transport that answers in-process (for sync clients)."""
        return httpx.MockTransport(self._respond)

    def client(self, **options: Any) -> ConnectWiseClient:
        """A `ConnectWiseClient` wired to this simulator in-process, with sleeping turned off."""
        settings: dict[str, Any] = {
            "base_url": IN_PROCESS_ORIGIN + self.api_path,
            "transport": self.transport(),
            "sleep": lambda seconds: None,
            **self.credentials,
        }
        settings.update(options)
        return ConnectWiseClient(**settings)

    @property
    def credentials(self) -> dict[str, str]:
        """The credentials this simulator accepts, as `ConnectWiseClient` keyword arguments."""
        return {
            "company_id": self.company_id,
            "public_key": self.public_key,
            "private_key": self.private_key,
            "client_id": self.client_id,
        }

    def serve(
        self, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
    ) -> SimulatorServer:
        """Serve this simulator over HTTP on loopback (HTTPS with ``ssl_context``)."""
        return SimulatorServer(self, host, port, ssl_context)

    def _respond(self, request: httpx.Request) -> httpx.Response:
        return answer_in_process(self.handle, request, self.faults.pause)

    def handle(self, request: SimRequest) -> Response | Dropped:
        """Answer one request: faults first, then the endpoint."""
        path = request.path
        relative = path[len(self.api_path) :] if path.startswith(self.api_path) else path
        fault = self.faults.draw(request.method, relative)
        outcome: Response | Dropped
        if fault is not None and fault.kind == "reset":
            outcome = Dropped("reset")
        elif fault is not None and fault.kind == "status":
            outcome = fault_response(fault.status_code, fault.retry_after)
        else:
            with self._lock:
                outcome = self._route(request, relative)
            if fault is not None:  # the server acted; what reaches the client is the fault's
                outcome = after_acting(fault, outcome)
        status = outcome.status if isinstance(outcome, Response) else None
        with self._lock:
            self._log.append(
                LoggedRequest(
                    request.method, relative, request.query, status, fault.kind if fault else None
                )
            )
        return outcome

    # -- routing (under the lock) ----------------------------------------------------------

    def _route(self, request: SimRequest, relative: str) -> Response:
        method = request.method
        if request.path.startswith("/login/companyinfo/"):
            return self._company_info(request.path.rsplit("/", 1)[-1], request.origin)
        if relative == request.path:
            return Response(404, error_body("NotFound", f"no such path: {request.path}"))
        refusal = self._authenticate(request.headers)
        if refusal:
            return refusal
        state = self._state
        if method == "POST" and relative in (_BATCHES, _EXPORT):
            return (
                state.create(request.body) if relative == _BATCHES else state.export(request.body)
            )
        if relative in (_BATCHES, _BATCHES + "/count") and method == "GET":
            try:
                selected = state.select(request.query.get("conditions"))
            except ConditionError as err:
                return Response(400, error_body("InvalidObject", f"conditions: {err}"))
            return listing(selected, request, count=relative.endswith("/count"), filtered=True)
        match = _BATCH.fullmatch(relative)
        if match:
            return self._one_batch(method, int(match.group(1)), match.group(2) or "", request)
        match = _UNPOSTED.fullmatch(relative)
        if match and method == "GET":
            records = state.open_records(_UNPOSTED_KIND[match.group(1).lower()])
            return one_or_list(records, match.group(2) or "", request)
        return Response(404, error_body("NotFound", f"no such endpoint: {method} {relative}"))

    def _one_batch(self, method: str, batch_id: int, tail: str, request: SimRequest) -> Response:
        state = self._state
        if tail == "/export" and method == "POST":
            return state.export(request.body, batch_id)
        if not tail and method == "GET":
            return state.get(batch_id)
        if not tail and method == "DELETE":
            return state.delete(batch_id)
        if tail.startswith("/entries") and method == "GET":
            entries = state.entries(batch_id)
            if isinstance(entries, Response):
                return entries
            return one_or_list(entries, tail.removeprefix("/entries"), request)
        return Response(405, error_body("MethodNotAllowed", f"{method} is not allowed here"))

    def _company_info(self, company: str, origin: str) -> Response:
        if company.lower() != self.company_id.lower():
            return Response(404, error_body("NotFound", f"company {company!r} not found"))
        version = self.codebase.strip("/").lstrip("v").replace("_", ".")
        return Response(  # its values are strings, "IsCloud" included, as ConnectWise sends them
            200,
            {
                "CompanyName": f"{self.company_id} (simulated)",
                "Codebase": self.codebase,
                "VersionCode": "v" + version,
                "VersionNumber": "v" + version + ".0",
                "CompanyID": self.company_id,
                "IsCloud": "False",
                "SiteUrl": origin.split("://", 1)[-1],
            },
        )

    def _authenticate(self, headers: Mapping[str, str]) -> Response | None:
        if headers.get("authorization") != self._authorization:
            return Response(401, error_body("Unauthorized", "Authentication failed"))
        if headers.get("clientid") != self.client_id:
            return Response(
                401, error_body("Unauthorized", "clientId is missing or not recognised")
            )
        if not self.accounting_access:
            return Response(
                403,
                error_body("Security", "You do not have access to Finance > Accounting Interface"),
            )
        return None


def _today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()
