"""The license commands end to end: keygen, issue, show, verify, and key rotation."""

import os
import subprocess
import sys
from pathlib import Path

ISSUE = [
    "license",
    "issue",
    "--product",
    "acme-erp",
    "--company",
    "杭州示例科技有限公司",
    "--contact",
    "张三",
    "--email",
    "zhang@example.com",
    "--feature-code",
    "9F2C-41AB",
    "--quantity",
    "5",
    "--valid-from",
    "2026-11-23",
    "--until",
    "2027-11-23",
    "--entitlement",
    "reports",
    "--entitlement",
    "api",
]


def keygen(run_cli, name: str) -> Path:
    result = run_cli("license", "keygen", "--out", f"{name}.pem")
    assert result.exit_code == 0, result.output
    return Path(f"{name}.pem")


def test_keygen_writes_a_private_key_and_prints_the_public_key_and_id(run_cli):
    result = run_cli("license", "keygen", "--out", "vendor.pem")
    assert result.exit_code == 0
    assert "-----BEGIN PUBLIC KEY-----" in result.output and "Key id:" in result.output
    assert Path("vendor.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert Path("vendor.pem").stat().st_mode & 0o777 == 0o600
    assert Path("vendor.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_never_overwrites_a_key(run_cli):
    keygen(run_cli, "vendor")
    result = run_cli("license", "keygen", "--out", "vendor.pem")
    assert result.exit_code == 1 and "vendor.pem exists" in result.output


def test_keygen_can_lock_the_key_with_a_passphrase(run_cli):
    result = run_cli("license", "keygen", "--out", "k.pem", "--encrypt", input="s3cret\ns3cret\n")
    assert result.exit_code == 0
    assert "ENCRYPTED PRIVATE KEY" in Path("k.pem").read_text()
    env = {"LICENSE_SIGNING_KEY": "k.pem", "LICENSE_SIGNING_KEY_PASSPHRASE": "s3cret"}
    assert run_cli(*ISSUE, "--out", "a.lic", env=env).exit_code == 0


def test_issue_show_verify_round_trip(run_cli):
    env = {"LICENSE_SIGNING_KEY": str(keygen(run_cli, "vendor"))}
    assert run_cli(*ISSUE, "--out", "a.lic", env=env).exit_code == 0
    shown = run_cli("license", "show", "a.lic", env=env)
    assert "Licensee:     杭州示例科技有限公司 / 张三 <zhang@example.com>" in shown.output
    assert "Valid until:  2027-11-23T00:00:00Z" in shown.output
    assert "Signature:    valid" in shown.output
    verified = run_cli(
        "license",
        "verify",
        "a.lic",
        "--feature-code",
        "9F2C-41AB",
        "--at",
        "2027-01-01",
        env=env,
    )
    assert verified.exit_code == 0, verified.output
    assert (
        "is valid: acme-erp for 杭州示例科技有限公司, quantity 5, until 2027-11-23"
        in verified.output
    )


def test_verify_says_why_and_exits_non_zero(run_cli):
    env = {"LICENSE_SIGNING_KEY": str(keygen(run_cli, "vendor"))}
    run_cli(*ISSUE, "--out", "a.lic", env=env)
    late = run_cli("license", "verify", "a.lic", "--at", "2028-01-01", env=env)
    other = run_cli(
        "license",
        "verify",
        "a.lic",
        "--feature-code",
        "0000",
        "--at",
        "2027-01-01",
        env=env,
    )
    assert (
        late.exit_code == 1 and "License rejected: the license expired at 2027-11-23" in late.output
    )
    assert other.exit_code == 1 and "for the machine with feature code '9F2C-41AB'" in other.output


def test_verify_with_a_rotated_key_ring(run_cli):
    old = keygen(run_cli, "2025")
    run_cli(*ISSUE, "--out", "old.lic", env={"LICENSE_SIGNING_KEY": str(old)})
    new = keygen(run_cli, "2026")
    rotated = {"LICENSE_SIGNING_KEY": str(new), "LICENSE_PUBLIC_KEYS": "2025.pub"}
    run_cli(*ISSUE, "--out", "new.lic", env=rotated)
    for name in ("old.lic", "new.lic"):
        assert run_cli("license", "verify", name, "--at", "2027-01-01", env=rotated).exit_code == 0
    dropped = run_cli(
        "license",
        "verify",
        "old.lic",
        "--at",
        "2027-01-01",
        env={"LICENSE_SIGNING_KEY": str(new)},
    )
    assert dropped.exit_code == 1 and "does not know" in dropped.output


def test_verify_with_explicit_public_keys_needs_no_configuration(run_cli):
    run_cli(*ISSUE, "--out", "a.lic", env={"LICENSE_SIGNING_KEY": str(keygen(run_cli, "v"))})
    result = run_cli("license", "verify", "a.lic", "--public-key", "v.pub", "--at", "2027-01-01")
    assert result.exit_code == 0, result.output


def test_show_flags_a_license_whose_signature_fails(run_cli):
    env = {"LICENSE_SIGNING_KEY": str(keygen(run_cli, "vendor"))}
    run_cli(*ISSUE, "--out", "a.lic", env=env)
    shown = run_cli(
        "license",
        "show",
        "a.lic",
        env={"LICENSE_SIGNING_KEY": str(keygen(run_cli, "other"))},
    )
    assert "Signature:    NOT VALID: the license is signed with key" in shown.output


def test_issue_needs_exactly_one_validity(run_cli):
    result = run_cli(*ISSUE[:-6], "--days", "30", "--perpetual")
    assert result.exit_code == 2 and "exactly one of --days, --until, --perpetual" in result.output


def test_issue_refuses_a_license_that_ends_before_it_starts(run_cli):
    args = [a if a != "2027-11-23" else "2026-01-01" for a in ISSUE]
    result = run_cli(*args)
    assert result.exit_code == 1 and "must end after it starts" in result.output


def test_in_production_issuing_without_a_key_says_how_to_make_one(run_cli):
    result = run_cli(*ISSUE, env={"DINGPASS_ENV": "production"})
    assert result.exit_code == 1 and "dingpass license keygen" in result.output
    assert "Traceback" not in result.output


def test_the_installed_console_script_reads_the_environment(tmp_path):
    script = Path(sys.executable).with_name("dingpass")
    env = {**os.environ, "DINGPASS_ENV": "staging"}
    done = subprocess.run(
        [script, "config", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert (
        "DINGPASS_ENV='staging' is not usable: must be one of development, production"
        in done.stderr
    )


def test_in_development_the_public_key_is_written_beside_the_signing_key(run_cli):
    assert run_cli(*ISSUE, "--out", "a.lic").exit_code == 0
    public = Path("var/dev-license-key.pub")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    result = run_cli(
        "license", "verify", "a.lic", "--public-key", str(public), "--at", "2027-01-01"
    )
    assert result.exit_code == 0, result.output


def test_a_development_key_made_before_the_public_key_was_written_gets_one(run_cli):
    run_cli(*ISSUE, "--out", "a.lic")
    Path("var/dev-license-key.pub").unlink()  # as an earlier version left the folder
    assert run_cli(*ISSUE, "--out", "b.lic").exit_code == 0
    result = run_cli(
        "license",
        "verify",
        "a.lic",
        "--public-key",
        "var/dev-license-key.pub",
        "--at",
        "2027-01-01",
    )
    assert result.exit_code == 0, result.output


def test_in_development_verify_checks_against_the_key_in_var_by_default(run_cli):
    run_cli(*ISSUE, "--out", "a.lic")
    result = run_cli("license", "verify", "a.lic", "--at", "2027-01-01")
    assert result.exit_code == 0, result.output
