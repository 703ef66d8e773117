"""`dingpass license keygen | issue | verify | show`."""

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from backend import license_keys
from backend.clock import utc_now
from backend.config import Config
from backend.exceptions import ConfigError
from cli.context import pass_config
from license import (
    Issuer,
    License,
    Licensee,
    LicenseError,
    decode_unverified,
    key_ring,
    new_license_id,
    verify,
)
from license.keys import generate, key_id, private_pem, public_pem
from license.render import summary_of
from license.verifier import check

UTC_TIME = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"])


@click.group("license", help="Make signing keys, issue, verify and show licenses.")
def group() -> None:
    """The `license` command group."""


@group.command("keygen")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File for the private key (PKCS#8 PEM); the public key goes beside it as .pub.",
)
@click.option(
    "--encrypt",
    is_flag=True,
    help="Protect the private key with a passphrase (asked for).",
)
def keygen(out: Path, encrypt: bool) -> None:
    """Make a new Ed25519 signing key; print its public key and key id."""
    passphrase = (
        click.prompt("Passphrase", hide_input=True, confirmation_prompt=True) if encrypt else None
    )
    key = generate()
    public_path = out.with_suffix(".pub")
    for path in (out, public_path):
        if path.exists():
            raise click.ClickException(f"{path} exists; move it away or choose another --out")
    license_keys.write_private(out, private_pem(key, passphrase.encode() if passphrase else None))
    public_path.write_bytes(public_pem(key.public_key()))
    click.echo(f"Private key: {out} (keep it secret; set LICENSE_SIGNING_KEY to it)")
    click.echo(f"Public key:  {public_path} (ship it in the product's key ring)")
    click.echo(f"Key id:      {key_id(key.public_key())}\n")
    click.echo(public_pem(key.public_key()).decode("ascii"), nl=False)


@group.command("issue")
@click.option("--product", required=True)
@click.option("--edition", default="standard", show_default=True)
@click.option("--company", required=True, help="The licensee's company name.")
@click.option("--contact", required=True, help="The licensee's contact person.")
@click.option("--email", required=True, help="The licensee's email address.")
@click.option("--feature-code", required=True, help="The machine fingerprint the product showed.")
@click.option("--quantity", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--valid-from", type=UTC_TIME, help="UTC start; default now.")
@click.option("--days", type=click.IntRange(min=1), help="Valid for this many days.")
@click.option("--until", type=UTC_TIME, help="Valid until this UTC time.")
@click.option("--perpetual", is_flag=True, help="Never expires.")
@click.option(
    "--entitlement",
    "entitlements",
    multiple=True,
    help="A feature flag; repeat for more.",
)
@click.option("--application", help="The application the license answers.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the license here instead of to standard output.",
)
@pass_config
def issue(config: Config, **options: object) -> None:
    """Sign a license with the configured key."""
    terms = _terms(**options)  # type: ignore[arg-type]
    try:
        text = _issuer(config).sign(terms)
    except LicenseError as err:
        raise click.ClickException(str(err)) from None
    out = options["out"]
    if isinstance(out, Path):
        out.write_text(text, encoding="utf-8")
        click.echo(f"Wrote license {terms.id} to {out}", err=True)
    else:
        click.echo(text, nl=False)


@group.command("verify")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A public key PEM to trust; repeat for more. Default: the configured key ring.",
)
@click.option("--feature-code", help="Also require this machine's feature code.")
@click.option("--product", help="Also require this product.")
@click.option("--at", "moment", type=UTC_TIME, help="Check at this UTC time instead of now.")
@pass_config
def verify_command(
    config: Config,
    file: TextIO,
    public_keys: tuple[str, ...],
    feature_code: str | None,
    product: str | None,
    moment: datetime | None,
) -> None:
    """Check a license's signature and terms; exit 1 with the reason if it does not hold."""
    ring = (
        key_ring(Path(path).read_bytes() for path in public_keys) if public_keys else _ring(config)
    )
    try:
        lic = verify(file.read(), ring, _utc(moment), feature_code=feature_code, product=product)
    except LicenseError as err:
        click.echo(f"License rejected: {err}", err=True)
        raise SystemExit(1) from None
    until = (
        "perpetual" if lic.valid_until is None else f"until {lic.valid_until:%Y-%m-%d %H:%M} UTC"
    )
    click.echo(
        f"License {lic.id} is valid: {lic.product} for {lic.licensee.company}, "
        f"quantity {lic.quantity}, {until}"
    )


@group.command("show")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@pass_config
def show(config: Config, file: TextIO) -> None:
    """Print a license's terms readably, and whether its signature checks out here."""
    text = file.read()
    try:
        lic = decode_unverified(text)
    except LicenseError as err:
        raise click.ClickException(str(err)) from None
    click.echo(summary_of(lic), nl=False)
    click.echo(f"{'Signature:':<14}{_signature_state(config, text, lic)}")
    click.echo(f"{'Now:':<14}{_state_now(lic)}")


def _signature_state(config: Config, text: str, lic: License) -> str:
    try:
        ring = license_keys.public_keys(config)
    except ConfigError as err:
        return f"not checked ({err})"
    try:  # at its own start time a genuine license always holds: this checks the signature
        verify(text, ring, now=lic.valid_from)
    except LicenseError as err:
        return f"NOT VALID: {err}"
    return f"valid (key {lic.key_id})"


def _state_now(lic: License) -> str:
    try:
        check(lic)
    except LicenseError as err:
        return str(err)
    return "in force"


def _terms(
    product: str,
    edition: str,
    company: str,
    contact: str,
    email: str,
    feature_code: str,
    quantity: int,
    valid_from: datetime | None,
    days: int | None,
    until: datetime | None,
    perpetual: bool,
    entitlements: tuple[str, ...],
    application: str | None,
    out: Path | None,
) -> License:
    now = utc_now().replace(microsecond=0)
    start = _utc(valid_from) or now
    return License(
        id=new_license_id(now),
        product=product,
        edition=edition,
        licensee=Licensee(company, contact, email),
        feature_code=feature_code,
        quantity=quantity,
        issued_at=now,
        valid_from=start,
        valid_until=_end(start, days, _utc(until), perpetual),
        entitlements=entitlements,
        application=application,
    )


def _end(
    start: datetime, days: int | None, until: datetime | None, perpetual: bool
) -> datetime | None:
    chosen = [
        name
        for name, given in (
            ("--days", days),
            ("--until", until),
            ("--perpetual", perpetual),
        )
        if given
    ]
    if len(chosen) != 1:
        raise click.UsageError(
            "say how long the license holds with exactly one of --days, --until, --perpetual"
        )
    if perpetual:
        return None
    return until if until is not None else start + timedelta(days=days or 0)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=timezone.utc)


def _issuer(config: Config) -> Issuer:
    try:
        return license_keys.issuer(config)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None


def _ring(config: Config) -> dict[str, Ed25519PublicKey]:
    try:
        return license_keys.public_keys(config)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
