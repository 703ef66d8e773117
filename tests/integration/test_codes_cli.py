"""`dingpass codes`: generate a batch (codes written once), look codes up, delete them."""

import csv
import io
import os
import pty
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from backend.codes import batches
from backend.codes.hashing import code_hash
from backend.config import Config
from backend.storage import codes as store
from cli import codes
from cli.context import script_info
from tests.conftest import CATALOGUE, ROOT

KEY = "test-code-hash-key-0123456789abcdef"
WINDOW = ("--valid-from", "2026-01-01", "--valid-until", "2099-01-01")
NOW = datetime.now(timezone.utc)


@pytest.fixture
def env(database_url) -> dict[str, str]:
    return {"CATALOGUE_FILE": str(CATALOGUE), "DATABASE_URL": database_url, "CODE_HASH_KEY": KEY}


@pytest.fixture
def run_codes(database, env, tmp_path, monkeypatch):
    """Run `dingpass codes ARGS` in-process on the test database."""
    monkeypatch.chdir(tmp_path)
    config = Config.from_env(env)

    def run(*args: str):
        return CliRunner().invoke(codes.group, list(args), obj=script_info(config))

    return run


@pytest.fixture
def made(run_codes, tmp_path) -> list[list[str]]:
    """A batch of three codes of acme-erp, as its CSV rows: [code, batch]."""
    result = run_codes("generate", "--product", "acme-erp", "--count", "3", *WINDOW, "--out", "c")
    assert result.exit_code == 0, result.output
    return read_csv((tmp_path / "c").read_text())[1:]


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def generate(run_codes, *args: str):
    return run_codes("generate", "--product", "acme-erp", *WINDOW, *args)


def test_generate_writes_each_code_once_to_a_new_csv_with_its_batch(run_codes, tmp_path):
    result = generate(run_codes, "--count", "25", "--quantity", "5", "--out", "spring.csv")
    assert result.exit_code == 0, result.output
    header, *rows = read_csv((tmp_path / "spring.csv").read_text())
    assert header == ["code", "batch"] and len({code for code, _ in rows}) == 25
    (batch_id,) = {batch for _, batch in rows}
    assert f"Batch {batch_id}: 25 codes for acme-erp, quantity 5, license 1y" in result.stdout
    assert "not shown again" in result.stdout
    assert os.listdir(tmp_path) == ["spring.csv"]  # no temporary file left beside it


def test_generated_codes_are_stored_hashed_and_unused(run_codes, database, made):
    for code, _ in made:
        assert batches.describe(database, KEY.encode(), code, NOW)["state"] == "unused"
        with database.transaction() as connection:
            assert store.by_hash(connection, code_hash(KEY.encode(), code)) is not None


def test_without_out_standard_output_carries_only_the_csv(run_codes):
    result = generate(run_codes, "--count", "4")
    assert result.exit_code == 0, result.output
    header, *rows = read_csv(result.stdout)
    assert header == ["code", "batch"] and len(rows) == 4
    assert rows[0][1] in result.stderr and "not shown again" in result.stderr


def test_generate_will_not_overwrite_a_file_and_makes_no_batch(run_codes, tmp_path, database):
    (tmp_path / "old.csv").write_text("code,batch\nKEEP-ME,bat-1\n")
    result = generate(run_codes, "--count", "4", "--out", "old.csv")
    assert result.exit_code == 1 and "old.csv exists" in result.output
    assert (tmp_path / "old.csv").read_text() == "code,batch\nKEEP-ME,bat-1\n"
    assert batches.listing(database) == []


def test_an_out_file_in_no_folder_exits_1_and_makes_no_batch(run_codes, database):
    result = generate(run_codes, "--count", "4", "--out", "missing/c.csv")
    assert result.exit_code == 1 and "no batch was made" in result.output
    assert batches.listing(database) == []


def test_bad_terms_exit_1_naming_each_option_and_make_nothing(run_codes, database):
    result = run_codes("generate", "--product", "acme-ops", "--count", "0", *WINDOW, "--days", "0")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--product: no product 'acme-ops' in the catalogue" in result.output
    assert "--count: 0 codes: a batch has 1 to 100000" in result.output
    assert "--days/--validity: validity '0d' is unknown" in result.output
    assert batches.listing(database) == []


def test_dates_are_utc_midnight_or_iso_8601(run_codes, database):
    window = ("--valid-from", "2098-12-01", "--valid-until", "2099-01-01T08:00:00+08:00")
    result = run_codes("generate", "--product", "acme-erp", "--count", "1", *window)
    assert result.exit_code == 0, result.output
    (batch,) = batches.listing(database)
    assert (batch["valid_from"], batch["valid_until"]) == (
        "2098-12-01T00:00:00Z",
        "2099-01-01T00:00:00Z",
    )


def test_a_date_that_is_no_date_is_a_usage_error(run_codes):
    result = run_codes(
        "generate",
        "--product",
        "acme-erp",
        "--count",
        "1",
        "--valid-from",
        "1st of May",
        "--valid-until",
        "2099-01-01",
    )
    assert result.exit_code == 2 and "'1st of May' is neither YYYY-MM-DD nor ISO 8601" in (
        result.output
    )


def test_a_date_no_database_holds_is_a_usage_error_not_a_traceback(run_codes):
    result = run_codes(
        "generate",
        "--product",
        "acme-erp",
        "--count",
        "1",
        "--valid-from",
        "2026-12-01",
        "--valid-until",
        "9999-12-31T23:59:59-05:00",
    )
    assert result.exit_code == 2 and "outside the years" in result.output
    assert "Traceback" not in result.output


def test_days_and_validity_together_are_a_usage_error(run_codes, database):
    result = generate(run_codes, "--count", "1", "--days", "45", "--validity", "1y")
    assert result.exit_code == 2 and "--days or --validity, not both" in result.output
    assert batches.listing(database) == []


def test_days_give_licenses_of_that_many_days(run_codes, database):
    assert generate(run_codes, "--count", "1", "--days", "45").exit_code == 0
    assert batches.listing(database)[0]["validity"] == "45d"


def test_a_bar_shows_progress_on_a_terminal(env, database, tmp_path):
    script = (
        "import os, sys; from backend.config import Config; from cli import codes; "
        "from cli.context import script_info; "
        "codes.group.main(sys.argv[1:], obj=script_info(Config.from_env(os.environ)))"
    )
    args = ["generate", "--product", "acme-erp", "--count", "2000", *WINDOW, "--out", "c.csv"]
    leader, follower = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=tmp_path,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=follower,
        timeout=60,
    )
    os.close(follower)
    shown = os.read(leader, 65536).decode()
    os.close(leader)
    assert done.returncode == 0 and "Generating codes" in shown and "100%" in shown


# -- show ------------------------------------------------------------------------------------


def test_show_says_an_unused_code_can_be_redeemed_until_the_window_ends(run_codes, made):
    code, batch_id = made[0]
    result = run_codes("show", code.lower().replace("-", ""))
    assert result.exit_code == 0
    assert f"{code} is unused: it can be redeemed until 2099-01-01 00:00 UTC." in result.output
    assert f"batch    {batch_id}: acme-erp, quantity 1, license 1y" in result.output
    assert "window   2026-01-01 00:00 UTC to 2099-01-01 00:00 UTC" in result.output


def test_show_tells_the_operator_who_redeemed_a_code(run_codes, made, database):
    code, _ = made[0]
    with database.transaction() as connection:
        record = store.by_hash(connection, code_hash(KEY.encode(), code))
        store.take(connection, record.id, datetime(2026, 5, 1, 9, 30, tzinfo=timezone.utc), "shop")
    result = run_codes("show", code)
    assert f"{code} was redeemed on 2026-05-01 09:30 UTC by shop." in result.output
    assert '"redeemed_by": "shop"' in run_codes("show", "--json", code).output


def test_show_of_a_typo_exits_1_with_what_the_check_symbol_found(run_codes, made):
    code, _ = made[0]
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    result = run_codes("show", typo)
    assert result.exit_code == 1 and "typing mistake" in result.output
    assert "Traceback" not in result.output


def test_show_of_a_code_never_made_says_it_is_unknown(run_codes, made):
    from license.codes import generate as new_code

    code = new_code()
    assert f"{code} is unknown" in run_codes("show", code).output


# -- batches ---------------------------------------------------------------------------------


def test_batch_counts_its_codes_by_state(run_codes, made):
    code, batch_id = made[0]
    run_codes("delete", code)
    result = run_codes("batch", batch_id)
    assert result.exit_code == 0
    assert result.output.startswith(f"{batch_id}: acme-erp, quantity 1, license 1y")
    assert "codes    3 codes: 2 unused, 0 redeemed, 1 deleted" in result.output


def test_batches_lists_each_with_its_counts(run_codes, made):
    result = run_codes("batches")
    assert result.exit_code == 0 and made[0][1] in result.output
    assert "2026-01-01..2099-01-01  3 codes: 3 unused" in result.output


def test_batches_without_any_says_how_to_make_one(run_codes):
    assert "dingpass codes generate" in run_codes("batches").output


def test_an_unknown_batch_exits_1_and_points_to_the_list(run_codes):
    result = run_codes("batch", "bat-0000000000000000")
    assert result.exit_code == 1 and "dingpass codes batches" in result.output


# -- delete ----------------------------------------------------------------------------------


def test_delete_a_code_then_again_changes_nothing(run_codes, made):
    code, _ = made[0]
    first, again = run_codes("delete", code), run_codes("delete", code)
    assert first.exit_code == again.exit_code == 0
    assert f"Deleted code {code}" in first.output and "deleted already" in again.output
    assert "was deleted on" in run_codes("show", code).output


def test_a_redeemed_code_cannot_be_deleted(run_codes, made, database):
    code, _ = made[0]
    with database.transaction() as connection:
        record = store.by_hash(connection, code_hash(KEY.encode(), code))
        store.take(connection, record.id, NOW, "203.0.113.7")
    result = run_codes("delete", code)
    assert result.exit_code == 1 and "was redeemed and cannot be deleted" in result.output


def test_delete_batch_then_again_changes_nothing(run_codes, made):
    batch_id = made[0][1]
    first, again = run_codes("delete-batch", batch_id), run_codes("delete-batch", batch_id)
    assert f"Deleted batch {batch_id}: 3 unredeemed code(s)" in first.output
    assert again.exit_code == 0 and "deleted already" in again.output
    assert "was deleted on" in run_codes("show", made[1][0]).output
