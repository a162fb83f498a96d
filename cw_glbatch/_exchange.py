"""One request, sent again while that is safe: the retry loop every call goes through.

`exchange` yields the request (`Send`) and, between attempts, the wait (`Pause`); what to do
with each answer or failure is `_retry.decide`'s verdict, so a POST whose outcome is unknown is
never sent again. It returns the answer that settles the request or raises the error that ends
it (`_failures`), and logs each retry, credentials redacted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from ._answers import Answer, decode_json, with_json
from ._connection import Connection
from ._failures import error_for_response, retry_after_seconds, transport_error, transport_failure
from ._redact import redact_text
from ._retry import Failure, Verdict, decide
from ._steps import Call, Pause, Send

__all__ = ["exchange"]

logger = logging.getLogger("cw_glbatch")


def exchange(
    conn: Connection,
    method: str,
    url: str,
    path: str,
    *,
    headers: Mapping[str, str],
    params: Mapping[str, str | int] | None = None,
    content: bytes | None = None,
    read_only: bool = False,
) -> Call[Answer]:
    """Send one request through ``conn`` until `_retry.decide` says it is settled.

    ``path`` names the request in errors and logs; ``read_only``: a POST that changes nothing
    (an export), decided as a GET is.
    """
    attempt = 0
    while True:
        reply = yield Send(method, url, headers, params, content)
        conn._count_request()
        answer, failure = (reply.answer, reply.failure) if reply else (None, None)
        if answer is None and failure is None:
            raise RuntimeError("a Send was answered with nothing")  # a driver's bug
        status = answer.status if answer is not None else None
        retry_after = None
        if answer is not None and answer.status >= 300:  # (`decide` ignores it for a 2xx)
            retry_after = retry_after_seconds(answer.headers.get("retry-after"))
        reads = method == "GET" or read_only
        unreadable = False
        if reads and failure is None and answer is not None and answer.status < 300:
            try:  # parsed once, here: the call reads the JSON this check made
                answer = with_json(answer)
            except ValueError:  # a 2xx that is not JSON (a proxy's page) was not read
                unreadable = True
        decision = decide(
            method,
            status,
            failure=Failure.AFTER_SENDING
            if unreadable
            else (transport_failure(failure, answered=answer is not None) if failure else None),
            attempt=attempt,
            max_retries=conn._max_retries,
            retry_after=retry_after,
            jitter=conn._rng(),
            read_only=read_only,
        )
        unknown = decision.verdict is Verdict.OUTCOME_UNKNOWN
        if decision.verdict is Verdict.RETURN and answer is not None:
            return answer
        if decision.verdict is not Verdict.RETRY:
            if unreadable and answer is not None:
                decode_json(answer, method, path)  # raises, saying what came
            if failure is not None and (answer is None or answer.status < 300):
                raise transport_error(
                    method,
                    path,
                    failure,
                    conn._timeout,
                    outcome_unknown=unknown,
                    host=urlsplit(url).netloc,
                    secrets=conn._secrets,
                ) from failure
            if answer is not None:
                raise error_for_response(
                    method,
                    path,
                    answer.status,
                    answer.headers,
                    b"" if failure else answer.content,
                    outcome_unknown=unknown,
                    cut_at=answer.cut_at,
                )
        reason = f"HTTP {status}" if status is not None else f"{type(failure).__name__}"
        reason += " (not JSON)" if unreadable else ""
        if failure is not None:
            reason += f" ({redact_text(str(failure), conn._secrets)})"
        attempt += 1
        logger.info(
            "%s %s: %s; retry %d of %d in %.2f s",
            method,
            path,
            reason,
            attempt,
            conn._max_retries,
            decision.wait,
        )
        yield Pause(decision.wait)
