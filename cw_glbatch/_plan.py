"""What a run does with one batch, decided from plain values: the safety rules in one place.

`plan` looks at what is already known about a batch, from the journal of the run being resumed
and from earlier files (a success file's record, or a fail file's ``OutcomeUnknown`` mark), at
whether the batch can be sent at all, and at the run's state. It returns one `Decision`; the run
only carries it out. It does no I/O, so a threaded or an asyncio runner can use it as it is.

The rules, in order:

1. The journal of the run being resumed wins: a batch it records as created is reported
   created (its id looked up if it was not learned, never sent again); a definite answer it
   records is final; a batch it records as sent without a known outcome is looked up among the
   batches created since that run began (among all batches when an earlier file knows it too),
   and sent only if ConnectWise does not have it. While ConnectWise cannot be asked, such a
   batch stays unsettled: never "not sent".
2. A batch that cannot be sent (reader errors, bad ids, identifier problems) fails as invalid.
3. An earlier success file's batch is carried over (its id looked up, in all of ConnectWise's
   batches, if the file lacks it); a batch an earlier fail file marks ``OutcomeUnknown`` is
   looked up the same way before anything is sent.
4. Otherwise: not sent once the run stopped, planned in a dry run, else sent.

A dry run makes no request for any batch: what would need one is ``PLANNED``.
"""

from __future__ import annotations

import enum
from typing import Literal

import attrs

from ._models import BatchError

__all__ = ["Action", "Decision", "Known", "plan"]

KnownState = Literal["sent", "created", "failed", "unknown"]


@attrs.frozen
class Known:
    """What a record says about one batch.

    Attributes:
        state: ``"sent"`` (sent; no answer recorded), ``"created"``, ``"failed"`` (a definite
            answer: ConnectWise refused it), or ``"unknown"`` (whether it was created could not
            be told).
        identifier: The identifier it was sent with.
        batch_id: ConnectWise's id of the batch, when created and known.
        error: Why it failed, for ``"failed"``.
    """

    state: KnownState
    identifier: str
    batch_id: int | None = None
    error: BatchError | None = None


class Action(enum.Enum):
    """What the run does with a batch."""

    CARRIED_OVER = "carried over"  # created earlier, id known: report it created, send nothing
    ANSWERED = "answered"  # the resumed run got a definite answer: report it, send nothing
    INVALID = "invalid"  # cannot be sent: report it failed with its problems
    NOT_SENT = "not sent"  # the run stopped before sending it
    UNSETTLED = "unsettled"  # sent before, and ConnectWise cannot be asked now
    PLANNED = "planned"  # a dry run: it would be sent (or looked up)
    LEARN_ID = "learn id"  # created earlier, id not known: look the id up, never send
    LOOK_UP_FIRST = "look up first"  # may exist: look it up, send only if it does not
    SEND = "send"


@attrs.frozen
class Decision:
    """The action for one batch, and where to look for it when the action is a lookup.

    Attributes:
        action: What to do.
        whole_history: For a lookup: search every batch, not only those created since the run
            (or the run being resumed) began. A batch an earlier file knows needs it.
    """

    action: Action
    whole_history: bool = False


def plan(
    journal: Known | None,
    earlier: Known | None,
    *,
    invalid: bool,
    stopped: bool,
    dry_run: bool,
) -> Decision:
    """The decision for one batch.

    Args:
        journal: What the journal of the run being resumed records about it, if anything.
        earlier: What an earlier success or fail file records about it, if anything
            (``"created"`` or ``"unknown"``).
        invalid: The batch cannot be sent as it is.
        stopped: The run has stopped sending (credentials refused, ConnectWise unreachable).
        dry_run: Nothing is to be created.

    Returns:
        The `Decision`.
    """
    whole_history = earlier is not None  # an earlier file knows it: it may predate the run
    if journal is not None:
        if journal.state == "created":
            if journal.batch_id is not None:
                return Decision(Action.CARRIED_OVER)
            return _lookup(Action.LEARN_ID, whole_history=whole_history, dry_run=dry_run)
        if journal.state == "failed":
            return Decision(Action.ANSWERED)
        if stopped:
            return Decision(Action.UNSETTLED)
        return _lookup(Action.LOOK_UP_FIRST, whole_history=whole_history, dry_run=dry_run)
    if invalid:
        return Decision(Action.INVALID)
    if earlier is not None and earlier.state == "created":
        if earlier.batch_id is not None:
            return Decision(Action.CARRIED_OVER)
        return _lookup(Action.LEARN_ID, whole_history=whole_history, dry_run=dry_run)
    if earlier is not None and earlier.state == "unknown":
        if stopped:
            return Decision(Action.UNSETTLED)
        return _lookup(Action.LOOK_UP_FIRST, whole_history=whole_history, dry_run=dry_run)
    if stopped:
        return Decision(Action.NOT_SENT)
    return Decision(Action.PLANNED if dry_run else Action.SEND)


def _lookup(action: Action, *, whole_history: bool, dry_run: bool) -> Decision:
    return Decision(Action.PLANNED) if dry_run else Decision(action, whole_history)
