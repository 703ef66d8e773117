"""Job kinds by name: what runs each one and how it is retried, like tasks in rq or Celery.

Each module of job kinds keeps a Registry of its own and marks its handlers with
``@kinds.kind("name")``, as a Flask blueprint marks its views; backend.work includes
every module's registry in one, and the runner dispatches through it. A handler is
found by the name in code, never by a dotted path stored in the database.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from backend.jobs.model import KIND_LENGTH, Job, Outcome, Retry

C = TypeVar("C")
Handler = Callable[[C, Job], Outcome]
"""Does one job's work with the context the runner was given (its services)."""


@dataclass(frozen=True)
class JobKind(Generic[C]):
    """A kind of job: its name, its handler and its retry policy (None: the runner's default)."""

    name: str
    handler: Handler[C]
    retry: Retry | None = None


class Registry(Generic[C]):
    """Job kinds by name."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind[C]] = {}

    def kind(self, name: str, *, retry: Retry | None = None) -> Callable[[Handler[C]], Handler[C]]:
        """Register the decorated function as the handler of jobs of kind ``name``."""

        def register(handler: Handler[C]) -> Handler[C]:
            self.add(JobKind(name, handler, retry))
            return handler

        return register

    def add(self, kind: JobKind[C]) -> None:
        """Register ``kind``; ValueError if its name is taken, since one name runs one handler."""
        if len(kind.name) > KIND_LENGTH:
            raise ValueError(f"job kind {kind.name!r} is longer than {KIND_LENGTH} characters")
        if kind.name in self._kinds:
            raise ValueError(f"two handlers for jobs of kind {kind.name!r}: rename one")
        self._kinds[kind.name] = kind

    def include(self, other: "Registry[C]") -> None:
        """Register every kind of ``other`` (a module's kinds) here."""
        for kind in other:
            self.add(kind)

    def get(self, name: str) -> JobKind[C] | None:
        """The kind called ``name``, or None."""
        return self._kinds.get(name)

    def retry_of(self, name: str, default: Retry) -> Retry:
        """How jobs of kind ``name`` are retried: as the kind says, else ``default``."""
        kind = self._kinds.get(name)
        return kind.retry if kind is not None and kind.retry is not None else default

    def __iter__(self) -> Iterator[JobKind[C]]:
        return iter(self._kinds.values())

    def __contains__(self, name: object) -> bool:
        return name in self._kinds
