"""What jobs and mails can be about: an application, a change, a code batch, ..."""

from dataclasses import dataclass

from backend.compat import StrEnum


class SubjectType(StrEnum):
    """What kind of thing a job or mail is about."""

    APPLICATION = "application"
    CHANGE = "change"
    CODE_BATCH = "code_batch"
    LICENSE = "license"
    NOTIFICATION = "notification"


@dataclass(frozen=True)
class Subject:
    """The thing a job works on or a mail is about: ``application 42``, ``change 7``.

    ``type`` is a SubjectType when dingpass makes one; read back, it stays whatever the row
    says, so a row written by a newer version cannot stop an older runner from reading it.
    """

    type: str
    id: str

    @classmethod
    def application(cls, application_id: int) -> "Subject":
        """The subject of an application's jobs."""
        return cls(SubjectType.APPLICATION, str(application_id))

    @classmethod
    def change(cls, change_id: int) -> "Subject":
        """The subject of a change's jobs."""
        return cls(SubjectType.CHANGE, str(change_id))

    def number(self, expected: SubjectType) -> int:
        """The id of a subject that must be of type ``expected`` and numbered; else ValueError."""
        if self.type != expected or not self.id.isascii() or not self.id.isdecimal():
            raise ValueError(f"a job about {self} was given to a handler of {expected}s")
        return int(self.id)

    def __str__(self) -> str:
        return f"{self.type} {self.id}"
