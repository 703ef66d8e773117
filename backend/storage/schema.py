"""The tables, as SQLAlchemy Core metadata; Alembic migrations create and change them."""

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (SQLite and MySQL alike)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # MySQL's plain DATETIME drops fractions of a second.
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("store aware datetimes only")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)
MYSQL: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}

applications = Table(
    "applications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("instance_id", String(64), unique=True),  # the DingTalk approval instance, once opened
    Column("token", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False, index=True),
    Column("product", String(64), nullable=False),
    Column("product_version", String(64), nullable=False),
    Column("feature_code", String(128), nullable=False),
    Column("company", String(100), nullable=False),
    Column("contact", String(50), nullable=False),
    Column("email", String(254), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("validity", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Column("language", String(8), nullable=False),
    Column("client_ip", String(45), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("uq_applications_instance_id", "instance_id", unique=True),
    **MYSQL,
)

application_events = Table(
    "application_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "application_id",
        Integer,
        ForeignKey("applications.id"),
        nullable=False,
        index=True,
    ),
    Column("status", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    **MYSQL,
)

rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("window_start", Integer, nullable=False),  # epoch seconds
    Column("count", Integer, nullable=False),
    **MYSQL,
)

approval_events = Table(
    "approval_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("instance_id", String(64), nullable=False),
    Column("event_type", String(16), nullable=False),
    Column("result", String(16)),
    Column("transport", String(16), nullable=False),
    Column("application_id", Integer, ForeignKey("applications.id")),
    Column("outcome", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    # The business key, not transport ids: a push, its retries and a Stream redelivery share it.
    UniqueConstraint("instance_id", "event_type"),
    **MYSQL,
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("subject_type", String(32)),  # what the job is about: application 42, change 7, none
    Column("subject_id", String(64)),
    # The same work recorded twice is recorded once: by default one job of a kind per subject.
    Column("dedupe_key", String(191), nullable=False, unique=True),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("run_after", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("payload", Text, nullable=False, server_default="{}"),
    Column("condition", Text),  # JSON: what a waiting job re-checks later
    Column("leased_by", String(64)),
    Column("lease_until", UTCDateTime),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("finished_at", UTCDateTime),
    Index("ix_jobs_due", "status", "run_after"),
    Index("ix_jobs_subject", "subject_type", "subject_id"),
    **MYSQL,
)

job_dependencies = Table(
    "job_dependencies",
    metadata,
    # A job runs only once every job it depends on has succeeded.
    Column("job_id", Integer, ForeignKey("jobs.id"), primary_key=True),
    Column("depends_on", Integer, ForeignKey("jobs.id"), primary_key=True, index=True),
    **MYSQL,
)

callback_nonces = Table(
    "callback_nonces",
    metadata,
    Column("key", String(100), primary_key=True),  # timestamp:nonce
    Column("seen_at", UTCDateTime, nullable=False, index=True),
    **MYSQL,
)

dingtalk_tokens = Table(
    "dingtalk_tokens",
    metadata,
    Column("app_key", String(100), primary_key=True),
    Column("token", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    **MYSQL,
)

licenses = Table(
    "licenses",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "application_id",
        Integer,
        ForeignKey("applications.id"),
        nullable=False,
        unique=True,
    ),
    Column("key_id", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("valid_until", UTCDateTime),
    **MYSQL,
)

mails = Table(
    "mails",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject_type", String(32), nullable=False),  # what the mail is about, as for jobs
    Column("subject_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("recipient", String(254), nullable=False),
    Column("sent_at", UTCDateTime),  # set the moment the SMTP server accepted it
    UniqueConstraint("subject_type", "subject_id", "kind"),
    **MYSQL,
)
