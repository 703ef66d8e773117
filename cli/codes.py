"""`dingpass codes generate | show | batch | batches | delete | delete-batch`: activation codes."""

import contextlib
import csv
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from backend.apps import store as apps
from backend.apps.errors import AppError
from backend.catalogue import MAX_DAYS, VALIDITIES, Catalogue, load_catalogue
from backend.clock import utc_now
from backend.codes import batches
from backend.codes.batches import DEFAULT_VALIDITY, MAX_COUNT, BatchTerms
from backend.codes.errors import BadTerms, CodeError
from backend.codes.hashing import hash_key
from backend.codes.lookup import canonical
from backend.config import Config
from backend.storage.codes import Batch
from backend.storage.database import Database
from cli.context import pass_config
from license import ActivationCodeError

T = TypeVar("T")

NOT_SHOWN_AGAIN = (
    "The codes are not shown again: only their keyed hashes are stored. "
    "Keep them safe; a lost code cannot be recovered (delete the batch and make another)."
)
STATES = {
    "unknown": "is unknown: no such code was generated here (or it was, under another "
    "CODE_HASH_KEY)",
    "unused": "is unused: it can be redeemed until {valid_until}",
    "redeemed": "was redeemed on {redeemed_at} by {redeemed_by}",
    "not_yet_valid": "is not valid yet: it can be redeemed from {valid_from}",
    "expired": "has expired: it could be redeemed until {valid_until}",
    "deleted": "was deleted on {deleted_at}: it can no longer be redeemed",
}
"""A code's state in words, filled in from what describe() says of it."""
TIMES = {"valid_from", "valid_until", "redeemed_at", "deleted_at"}
"""What describe() says that is a time."""


FIRST_YEAR, LAST_YEAR = 1970, 9998
"""The years a date may name: what every database's datetime column holds in UTC."""


class UtcMoment(click.ParamType[datetime]):
    """YYYY-MM-DD (midnight UTC) or ISO 8601 (without a zone: UTC), as an aware datetime."""

    name = "DATE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:  # Python 3.10's fromisoformat reads no "Z"
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
        except ValueError:
            self.fail(f"{value!r} is neither YYYY-MM-DD nor ISO 8601 (2026-12-01T08:00:00Z)")
        try:
            moment = moment.replace(tzinfo=moment.tzinfo or timezone.utc).astimezone(timezone.utc)
        except OverflowError:
            moment = datetime.max.replace(tzinfo=timezone.utc)
        if not FIRST_YEAR <= moment.year <= LAST_YEAR:
            self.fail(f"{value!r} is outside the years {FIRST_YEAR} to {LAST_YEAR}")
        return moment


UTC_MOMENT = UtcMoment()


@click.group("codes", help="Activation codes: generate batches, look codes up, delete them.")
def group() -> None:
    """The `codes` command group."""


@group.command("generate")
@click.option("--product", required=True, help="A product of the catalogue.")
@click.option("--count", required=True, type=int, help=f"How many codes (1 to {MAX_COUNT}).")
@click.option(
    "--valid-from",
    required=True,
    type=UTC_MOMENT,
    help="Redeemable from: YYYY-MM-DD (00:00 UTC) or ISO 8601.",
)
@click.option(
    "--valid-until",
    required=True,
    type=UTC_MOMENT,
    help="Redeemable until then (not at it); as --valid-from.",
)
@click.option(
    "--quantity", type=int, default=1, show_default=True, help="Seats in each code's license."
)
@click.option("--days", type=int, help=f"The license runs this many days (1 to {MAX_DAYS}).")
@click.option(
    "--validity",
    help=f"The license's validity: {', '.join(VALIDITIES)} (default {DEFAULT_VALIDITY}).",
)
@click.option("--note", default="", help="What the batch is for (a sale, a beta).")
@click.option(
    "--app",
    "app_name",
    help="A partner's app (name or key) the batch is made for: its codes are the app's to "
    "query and redeem through the API. Unset: the vendor's own, for the QR page.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the codes to this CSV file (new) instead of to standard output.",
)
@pass_config
def generate(config: Config, out: Path | None, app_name: str | None, **options: Any) -> None:
    """Make a batch of codes and write them once, as CSV: code,batch.

    The file (or standard output) gets the codes only after the batch is committed.
    """
    terms = replace(_terms(**options), app_id=_app_id(config, app_name))
    if out is not None and out.exists():
        raise click.ClickException(f"{out} exists; move it away or choose another --out")
    key, catalogue = hash_key(config), load_catalogue(config.catalogue_file)
    try:
        with tempfile.TemporaryFile("w+", encoding="ascii", dir=out and out.parent) as spool:
            batch = _generate(config, key, catalogue, terms, spool)
            spool.seek(0)
            _deliver(spool, batch, out)
    except OSError as err:  # before the commit: the transaction was rolled back
        raise click.ClickException(
            f"no batch was made: the codes cannot be written ({err})"
        ) from None
    where = f"written to {out}" if out else "written above"
    terms_text = _terms_text(vars(batch))
    message = f"Batch {batch.public_id}: {batch.size} codes for {terms_text}, {where}."
    click.echo(message, err=out is None)
    click.echo(NOT_SHOWN_AGAIN, err=out is None)


@group.command("show")
@click.argument("code")
@click.option("--json", "as_json", is_flag=True, help="Print what is known as JSON.")
@pass_config
def show(config: Config, code: str, as_json: bool) -> None:
    """Say where CODE stands: unused, redeemed (when, by whom, which license), expired, ..."""
    key = hash_key(config)
    found = _run(config, lambda db: batches.describe(db, key, code, utc_now(), with_redeemer=True))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    shown = {
        name: _when(value) if name in TIMES else _or_dash(value) for name, value in found.items()
    }
    click.echo(f"{found['code']} {STATES[found['state']].format(**shown)}.")
    if "batch" in found:
        click.echo(f"  batch    {found['batch']}: {_terms_text(found)}")
        click.echo(f"  window   {shown['valid_from']} to {shown['valid_until']}")
    if found.get("application"):
        click.echo(f"  made     application {found['application']}, license {shown['license']}")


@group.command("batch")
@click.argument("batch_id")
@pass_config
def batch(config: Config, batch_id: str) -> None:
    """Show batch BATCH_ID: its terms, window, and its codes counted by state."""
    found = _run(config, lambda db: batches.summary(db, batch_id))
    click.echo(f"{found['id']}: {_terms_text(found)}{_note(found)}")
    click.echo(f"  window   {_when(found['valid_from'])} to {_when(found['valid_until'])}")
    deleted = f", deleted {_when(found['deleted_at'])}" if found["deleted_at"] else ""
    click.echo(f"  created  {_when(found['created_at'])}{deleted}")
    click.echo(f"  codes    {_counts(found['counts'])}")


@group.command("batches")
@pass_config
def list_batches(config: Config) -> None:
    """List the batches, newest first, with their codes counted by state."""
    found = _run(config, batches.listing)
    if not found:
        click.echo("No code batches (make one: `dingpass codes generate`).")
        return
    for one in found:
        window = f"{one['valid_from'][:10]}..{one['valid_until'][:10]}"
        state = "  DELETED" if one["deleted_at"] else ""
        click.echo(
            f"{one['id']}  {one['product']:<12} q{one['quantity']:<4} {one['validity']:<9} "
            f"{window}  {_counts(one['counts'])}{state}{_note(one)}"
        )


@group.command("delete")
@click.argument("code")
@pass_config
def delete(config: Config, code: str) -> None:
    """Delete CODE so that it can no longer be redeemed (a redeemed one cannot be deleted)."""
    key = hash_key(config)
    deleted = _run(config, lambda db: batches.delete_code(db, key, code, utc_now()))
    shown = canonical(code)
    click.echo(
        f"Deleted code {shown}: it can no longer be redeemed."
        if deleted
        else f"Code {shown} was deleted already; nothing changed."
    )


@group.command("delete-batch")
@click.argument("batch_id")
@pass_config
def delete_batch(config: Config, batch_id: str) -> None:
    """Delete batch BATCH_ID: none of its unredeemed codes can be redeemed any more."""
    before = _run(config, lambda db: batches.summary(db, batch_id))
    deleted = _run(config, lambda db: batches.delete_batch(db, batch_id, utc_now()))
    if before["deleted_at"]:
        click.echo(f"Batch {batch_id} was deleted already; nothing changed.")
        return
    click.echo(
        f"Deleted batch {batch_id}: {deleted} unredeemed code(s) can no longer be redeemed; "
        f"{before['counts']['redeemed']} redeemed keep their licenses."
    )


def _app_id(config: Config, name_or_key: str | None) -> int | None:
    """The id of the app called (or keyed) ``name_or_key``; a clear error if there is none."""
    if name_or_key is None:
        return None
    database = Database(config.database)
    try:
        return database.run(lambda connection: apps.find(connection, name_or_key).id)
    except AppError as err:
        raise click.ClickException(str(err)) from None
    finally:
        database.dispose()


def _terms(
    product: str,
    count: int,
    valid_from: datetime,
    valid_until: datetime,
    quantity: int,
    days: int | None,
    validity: str | None,
    note: str,
) -> BatchTerms:
    if days is not None and validity is not None:
        raise click.UsageError("give --days or --validity, not both")
    chosen = f"{days}d" if days is not None else validity or DEFAULT_VALIDITY
    return BatchTerms(product, count, valid_from, valid_until, quantity, chosen, note)


def _generate(
    config: Config, key: bytes, catalogue: Catalogue, terms: BatchTerms, spool: IO[str]
) -> Batch:
    """The batch, its codes written to ``spool`` a line each, with a bar on a terminal."""

    def sink(codes: list[str]) -> None:
        spool.write("".join(f"{code}\n" for code in codes))

    with _progress_bar(terms.count) as bar:
        progress = None if bar is None else bar.update
        return _run(
            config,
            lambda db: batches.generate(db, key, catalogue, terms, utc_now(), sink, progress),
        )


@contextlib.contextmanager
def _progress_bar(count: int) -> Iterator[Any]:
    """A bar on standard error when it is a terminal, else None."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=count, label="Generating codes", file=sys.stderr) as bar:
        yield bar


def _deliver(spool: IO[str], batch: Batch, out: Path | None) -> None:
    """The committed codes as CSV: to ``out`` whole or not at all, else to standard output."""
    try:
        if out is None:
            _write_csv(spool, batch, sys.stdout)
            sys.stdout.flush()  # the codes before the lines about them on standard error
        else:
            _write_atomically(spool, batch, out)
    except OSError as err:
        raise click.ClickException(
            f"batch {batch.public_id} was made, but its codes could not be written ({err}): "
            f"delete it (`dingpass codes delete-batch {batch.public_id}`) and generate again"
        ) from None


def _write_atomically(spool: IO[str], batch: Batch, out: Path) -> None:
    """Write beside ``out``, then rename: a reader never sees half a file, nor one on failure."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="ascii", newline="", dir=out.parent, prefix=f".{out.name}.", delete=False
    ) as temporary:
        try:
            _write_csv(spool, batch, temporary)
            temporary.flush()
            os.fsync(temporary.fileno())
        except OSError:
            os.unlink(temporary.name)
            raise
    os.replace(temporary.name, out)


def _write_csv(spool: IO[str], batch: Batch, to: IO[str]) -> None:
    writer = csv.writer(to, lineterminator="\n")
    writer.writerow(["code", "batch"])
    for line in spool:
        writer.writerow([line.rstrip("\n"), batch.public_id])


def _run(config: Config, work: Callable[[Database], T]) -> T:
    """``work`` on DATABASE_URL's database; a mistake becomes one clear line and exit 1."""
    database = Database(config.database)
    try:
        return work(database)
    except BadTerms as err:
        raise click.ClickException(_bad_terms(err)) from None
    except (CodeError, ActivationCodeError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        database.dispose()


def _bad_terms(err: BadTerms) -> str:
    options = {"validity": "--days/--validity"}
    lines = (
        f"{options.get(name, '--' + name.replace('_', '-'))}: {text['en']}"
        for name, text in err.fields.items()
    )
    return "the batch cannot have these terms:\n  " + "\n  ".join(lines)


def _terms_text(found: dict[str, Any]) -> str:
    return f"{found['product']}, quantity {found['quantity']}, license {found['validity']}"


def _note(found: dict[str, Any]) -> str:
    return f"  ({found['note']})" if found.get("note") else ""


def _counts(counts: dict[str, int]) -> str:
    return (
        f"{counts['total']} codes: {counts['unused']} unused, {counts['redeemed']} redeemed, "
        f"{counts['deleted']} deleted"
    )


def _when(value: str | None) -> str:
    """A JSON time as people read it: 2026-12-01 08:00 UTC."""
    if value is None:
        return "-"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)
