"""Runs due jobs: claim under a lease, dispatch through the registry of kinds, settle."""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic

from sqlalchemy import Connection

from backend.exceptions import RetryCannotHelp
from backend.jobs import queue
from backend.jobs.model import (
    DEFAULT_RETRY,
    Cancelled,
    Done,
    Job,
    JobStatus,
    Outcome,
    Retry,
    Wait,
)
from backend.jobs.registry import C, Registry
from backend.storage.database import Database

FailureHook = Callable[[Connection, Job, str, datetime], None]
"""Called in the transaction that marks a job failed, with its last error and the time."""

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
"""Longer than any job runs: a leased job is being worked on; an expired lease is a dead runner."""
COME_BACK_WITHIN = timedelta(seconds=10)
"""How soon a job must fall due for an invocation to wait for it: a retry's first backoffs are
seconds, and waiting for later ones would keep an instance (and its bill) running for nothing."""
GIVE_UP = Retry(max_attempts=0)
"""For a failure that retrying cannot mend (RetryCannotHelp): the job fails at its first run."""


class Runner(Generic[C]):
    """One runner; any number may work on the same database at once.

    ``context`` is what every handler is given beside its job (the services it uses);
    ``retry`` is the policy of kinds that declare none.
    """

    def __init__(
        self,
        database: Database,
        kinds: Registry[C],
        context: C,
        clock: Callable[[], datetime],
        *,
        lease: timedelta = LEASE,
        retry: Retry = DEFAULT_RETRY,
        name: str | None = None,
        on_failed: FailureHook | None = None,
    ) -> None:
        self.database, self.kinds, self.context, self.clock = database, kinds, context, clock
        self.lease, self.retry = lease, retry
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self._kicked = threading.Event()
        self.on_failed = on_failed
        """Told, in the same transaction, of each job that gives up (the robots tell people)."""

    def run_one(self, only: int | None = None, context: C | None = None) -> bool:
        """Claim and run one due job (or job ``only``); False if none was due.

        ``context`` replaces the runner's own for this job: a Function Compute invocation
        brings the credentials its jobs are to use. A job it hands on (Done.then) is left to
        run_due: run_one runs inside requests (a redemption's license), which a mail must not
        hold up.
        """
        ran, _ = self._run(only, context)
        return ran

    def run_due(self, deadline: float | None = None, context: C | None = None) -> int:
        """Run jobs until none is due (or ``deadline``, a time.monotonic() value); how many ran.

        A job that hands its work on (Done.then) is followed by that job, before older work.
        """
        count, then = 0, None
        while deadline is None or time.monotonic() < deadline:
            ran, handed_on = self._run(then, context)
            if not ran and then is None:
                break
            # Not ran: the job handed on is not to be claimed now (taken by another runner,
            # waiting on another job, not due): older work next.
            count, then = count + ran, handed_on
        return count

    def _run(self, only: int | None, context: C | None) -> tuple[bool, int | None]:
        """Claim and run one due job (or job ``only``): whether one ran, and what it handed on."""
        job = queue.claim(self.database.transaction, self.name, self.clock(), self.lease, only)
        if job is None:
            return False, None
        kind = self.kinds.get(job.kind)
        try:
            if kind is None:
                raise LookupError(f"no handler for jobs of kind {job.kind!r}")
            outcome = kind.handler(self.context if context is None else context, job)
        except RetryCannotHelp as err:
            self._failed(job, f"{type(err).__name__}: {err}", GIVE_UP)
            return True, None
        except Exception as err:  # any failure is recorded and retried, never lost
            self._failed(job, f"{type(err).__name__}: {err}")
            return True, None
        self._settle(job, outcome)
        return True, outcome.then if isinstance(outcome, Done) else None

    def run_until(self, deadline: float, context: C | None = None) -> int:
        """Run jobs as they fall due until ``deadline`` (a time.monotonic() value); how many ran.

        A job that failed comes back after its backoff, seconds later: waiting for it here, on
        Function Compute, saves it the timer's minute. Returns as soon as nothing falls due
        within COME_BACK_WITHIN (the timer takes what comes later) or before the deadline.
        """
        count = 0
        while True:
            count += self.run_due(deadline, context)
            left = min(deadline - time.monotonic(), COME_BACK_WITHIN.total_seconds())
            pause = self._until_next_due(left)
            if pause >= left:
                return count
            self._kicked.wait(pause)
            self._kicked.clear()

    def kick(self) -> None:
        """Wake the loop now: work was just recorded."""
        self._kicked.set()

    def loop(self, interval: float, stop: threading.Event) -> None:
        """Run due jobs whenever kicked, when a waiting job falls due, and every ``interval``
        seconds as a backstop."""
        while not stop.is_set():
            pause = interval
            try:
                self.run_due()
                pause = self._until_next_due(interval)
            except Exception:  # the database may be away for a moment; the loop must outlive it
                log.exception("runner %s: a pass failed; trying again", self.name)
            self._kicked.wait(pause)
            self._kicked.clear()

    def _until_next_due(self, longest: float) -> float:
        """Seconds until the next waiting job falls due, at most ``longest``."""
        now = self.clock()
        with self.database.transaction() as connection:
            due = queue.next_due(connection, now)
        if due is None:
            return longest
        return min(longest, max(0.0, (due - now).total_seconds()))

    def _settle(self, job: Job, outcome: Outcome) -> None:
        now = self.clock()
        with self.database.transaction() as connection:
            if isinstance(outcome, Wait):
                kept = queue.wait(connection, job, now, outcome.condition, outcome.check_in)
            elif isinstance(outcome, Cancelled):
                kept = queue.cancelled(connection, job, now)
            else:
                kept = queue.finish(connection, job, now)
        if not kept:
            log.warning(
                "job %s (%s): its lease ran out and another runner took it", job.id, job.kind
            )

    def _failed(self, job: Job, error: str, retry: Retry | None = None) -> None:
        retry = retry or self.kinds.retry_of(job.kind, self.retry)
        with self.database.transaction() as connection:
            status = queue.failed_attempt(connection, job, self.clock(), error, retry)
            if status is JobStatus.FAILED and self.on_failed is not None:
                self.on_failed(connection, job, error, self.clock())
        if status is None:
            log.warning(
                "job %s (%s) failed after its lease ran out; another runner has it: %s",
                job.id,
                job.kind,
                error,
            )
        elif status is JobStatus.FAILED:
            log.error(
                "job %s (%s, %s) FAILED after %d attempts: %s. Once the cause is fixed, "
                "`dingpass jobs retry %s` runs it again.",
                job.id,
                job.kind,
                job.subject or "no subject",
                job.attempts,
                error,
                job.id,
            )
        else:
            log.warning(
                "job %s (%s) attempt %d failed, will retry: %s",
                job.id,
                job.kind,
                job.attempts,
                error,
            )
