"""A client's settings: which ConnectWise server, as whom, within which limits.

`Connection` checks the constructor's arguments (refusing, with `ConfigurationError`, missing
credentials and plain HTTP across the network), reads them from the environment (`from_env`),
and keeps what every request needs: the API root once known, the headers, the secrets to
redact from answers, the timeout, the retry and size limits, the request pacer and count.
Both clients build on it; it sends nothing itself.
"""

from __future__ import annotations

import os
import random
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from ._answers import Answer
from ._bounds import Received
from ._exceptions import ClientClosedError, ConfigurationError
from ._http import auth_headers, is_loopback, origin_of, user_agent
from ._preflight import check_client_options
from ._redact import Redaction
from ._retry import RequestPacer
from ._steps import Reply, Send

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "LIMITS",
    "Connection",
    "ssl_context",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 4

# Enough kept-alive connections for any sensible concurrency (ConnectWise throttles beyond).
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)


C = TypeVar("C", bound="Connection")


H = TypeVar("H", httpx.Client, httpx.AsyncClient)


def ssl_context(verify: str | os.PathLike[str] | ssl.SSLContext | None) -> ssl.SSLContext | bool:
    """What httpx's ``verify=`` gets: a context from a CA bundle path, or the default (True)."""
    if isinstance(verify, (str, os.PathLike)):
        return ssl.create_default_context(cafile=os.fspath(verify))
    return verify if verify is not None else True


class Connection:
    """What a ConnectWise client is configured with, and what each of its requests carries."""

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
            self._origin = origin_of(self._api_root)
        else:
            site = site or ""
            self._origin = origin_of(site if "://" in site else f"https://{site}")
            if codebase:
                self._api_root = f"{self._origin}/{codebase.strip('/')}/apis/3.0"
        if self._origin.startswith("http://") and not (
            allow_insecure_http or is_loopback(self._origin)
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
        auth = auth_headers(company_id, public_key, private_key, client_id)
        # What a server must never be able to echo into a message, a log or a file.
        self._secrets = (auth["Authorization"].removeprefix("Basic "), private_key, client_id)
        self._redact = Redaction(self._secrets)
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

    def _reply(self, received: Received) -> Reply:
        """What a call is sent back for what came: the answer's body with every secret redacted."""
        response = received.response
        if response is None:
            return Reply(failure=received.failure)
        content = self._redact(received.body)
        answer = Answer(response.status_code, response.headers, content, received.cut_at)
        return Reply(answer, received.failure)

    def _count_request(self) -> None:
        """Count one request sent (whatever thread or task sent it)."""
        with self._count_lock:
            self._requests_sent += 1

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
