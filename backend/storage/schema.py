"""The tables, as SQLAlchemy Core metadata; Alembic migrations create and change them."""

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
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


class ExactText(TypeDecorator[str]):
    """Text compared byte for byte, as SQLite compares it: a key, not words.

    MySQL's collations take 'vpc-A', 'vpc-a' and (padding) 'vpc-a ' for one value; on
    MySQL the text is stored as VARBINARY of its UTF-8, where every byte counts.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.VARBINARY(self.length * 4))
        return dialect.type_descriptor(String(self.length))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | bytes | None:
        if value is None or dialect.name != "mysql":
            return value
        return value.encode()

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return value.decode() if isinstance(value, bytes) else value


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
    Column("instance_id", String(64)),  # the DingTalk approval instance, once opened (unique)
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
    # The page's Idempotency-Key, and a hash of the form it came with: a retried submission gets
    # the first answer, and the same key with another form is refused.
    Column("idempotency_key", String(64)),
    Column("request_hash", String(64)),
    # When a start request went to DingTalk whose answer never came: until the instance is found
    # or known not to exist, opening another could make a second one.
    Column("instance_requested_at", UTCDateTime),
    Index("uq_applications_instance_id", "instance_id", unique=True),
    Index("uq_applications_idempotency_key", "idempotency_key", unique=True),
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
    Column("change_id", Integer, ForeignKey("changes.id")),  # what the event moved, if a change
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
    Column("dedupe_key", ExactText(191), nullable=False, unique=True),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("run_after", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("tries_since", UTCDateTime),  # when its current run of attempts began (the horizon's)
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

dingtalk_call_slots = Table(
    "dingtalk_call_slots",
    metadata,
    Column("app_key", String(100), primary_key=True),
    Column("api", String(32), primary_key=True),
    Column("next_at", BigInteger, nullable=False),  # epoch microseconds: the next free slot
    **MYSQL,
)

searched_instances = Table(
    "searched_instances",
    metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("form", Text, nullable=False),  # its components' values by label, as JSON
    Column("seen_at", UTCDateTime, nullable=False),
    Index("ix_searched_instances_seen_at", "seen_at"),
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
    # Set just before the last byte of the message goes to the server: from then on the server may
    # have accepted it, so a run that finds this set and sent_at not set does not send again.
    Column("handed_over_at", UTCDateTime),
    Column("sent_at", UTCDateTime),  # set the moment the SMTP server accepted it
    UniqueConstraint("subject_type", "subject_id", "kind"),
    **MYSQL,
)

robot_messages = Table(
    "robot_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("robot", String(32), nullable=False),  # its name in ROBOTS_FILE
    Column("event", String(32), nullable=False),
    Column("about_type", String(32), nullable=False),  # what the event is about: application 42
    Column("about_id", String(64), nullable=False),
    Column("facts", Text, nullable=False, server_default="{}"),  # JSON, for what is not re-read
    Column("recorded_at", UTCDateTime, nullable=False),
    # The job whose send carries this message (a digest carries several); set before sending.
    Column("batch", Integer),
    Column("sent_at", UTCDateTime),  # the robot took it
    # One message per robot, event and subject: recording an event twice tells a robot once.
    UniqueConstraint("robot", "event", "about_type", "about_id"),
    Index("ix_robot_messages_batch", "robot", "batch"),
    **MYSQL,
)

robot_slots = Table(
    "robot_slots",
    metadata,
    # A robot's budget: one row per message it may take in a minute, holding when it was last
    # used. Taking one is a conditional update, so runners never share a place between them.
    Column("robot", String(32), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("used_at", UTCDateTime, nullable=False),
    **MYSQL,
)

api_apps = Table(
    "api_apps",
    metadata,
    # A caller of the changes API (an ITSM or OA system), signing as API Gateway's apps do.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_key", ExactText(32), nullable=False, unique=True),  # X-Ca-Key
    Column("secret", String(64), nullable=False),  # HMAC needs it verbatim, as API Gateway keeps it
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    # What the app may do, comma-separated: changes, codes.generate, codes.query, ...
    Column("scopes", String(200), nullable=False, server_default="changes"),
    **MYSQL,
)

changes = Table(
    "changes",
    metadata,
    # A request to create cloud resources; ``public_id`` is what callers see (and what each
    # step's ClientToken is made from, so two installations on one account never share one).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_id", ExactText(40), nullable=False, unique=True),
    Column("app_id", Integer, ForeignKey("api_apps.id")),  # None: started in DingTalk
    Column("request_id", ExactText(64), nullable=False),  # the caller's own id for it
    Column("request_hash", String(64), nullable=False),  # the same id with another body: 409
    Column("type", String(32), nullable=False),
    Column("spec", Text, nullable=False),  # JSON, as validated
    Column("status", String(20), nullable=False),
    Column("error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # Who asked and how: the API (an app, with an optional callback) or a DingTalk form.
    Column("origin", String(16), nullable=False, server_default="api"),
    Column("requester", String(128)),  # the originator's userId, for a change from DingTalk
    Column("callback_url", Text),
    # The approval: the instance that gates it (or that it came from), and the decision.
    Column("approval_form", String(64)),  # the form's process code
    Column("instance_id", String(64)),
    Column("instance_requested_at", UTCDateTime),  # a start sent, not yet answered: in doubt
    Column("approval", String(16)),  # pending | agree | refuse | terminate
    Column("decided_at", UTCDateTime),
    UniqueConstraint("app_id", "request_id", name="uq_changes_app_id"),
    Index("ix_changes_app_created", "app_id", "created_at"),
    Index("ix_changes_status", "status"),
    Index("uq_changes_instance_id", "instance_id", unique=True),
    **MYSQL,
)

change_steps = Table(
    "change_steps",
    metadata,
    # One resource of a change, made by one plugin through one job.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("change_id", Integer, ForeignKey("changes.id"), nullable=False),
    Column("name", String(32), nullable=False),  # unique within the change: vpc, vswitch, ...
    Column("position", Integer, nullable=False),
    Column("type", String(32), nullable=False),  # the plugin's resource type
    Column("spec", Text, nullable=False),  # JSON: the plugin's parameters
    Column("inputs", Text, nullable=False, server_default="{}"),  # JSON: param <- step.result
    Column("needs", Text, nullable=False, server_default="[]"),  # JSON: names of earlier steps
    Column("status", String(20), nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id")),
    Column("resource_id", String(128)),  # set the moment the cloud named it
    Column("results", Text),  # JSON: ids and addresses, once ready
    Column("checks", Integer, nullable=False, server_default="0"),  # readiness checks so far
    Column("last_error", Text),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("deleted_at", UTCDateTime),  # `dingpass changes cleanup` removed its resource
    UniqueConstraint("change_id", "name", name="uq_change_steps_change_id"),
    **MYSQL,
)

code_batches = Table(
    "code_batches",
    metadata,
    # Activation codes made together for one product and its license terms.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_id", ExactText(40), nullable=False, unique=True),
    Column("product", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),  # the license's quantity
    Column("validity", String(16), nullable=False),  # the license's, as applications have it
    Column("valid_from", UTCDateTime, nullable=False),  # when its codes may be redeemed
    Column("valid_until", UTCDateTime, nullable=False),
    Column("note", String(200), nullable=False, server_default=""),
    Column("size", Integer, nullable=False),  # codes asked for
    Column("app_id", Integer, ForeignKey("api_apps.id")),  # None: made with the CLI
    Column("created_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
    **MYSQL,
)

activation_codes = Table(
    "activation_codes",
    metadata,
    # One code, known only by its keyed hash: a copy of the database gives no code away.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("code_batches.id"), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False, unique=True),  # HMAC-SHA256, hex
    Column("redeemed_at", UTCDateTime),
    Column("application_id", Integer, ForeignKey("applications.id"), unique=True),
    Column("redeemed_by", String(64)),  # the client address, or the partner app's name
    Column("deleted_at", UTCDateTime),
    **MYSQL,
)
