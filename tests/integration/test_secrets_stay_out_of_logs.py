"""What dingpass prints and logs never carries a password, nor what an applicant typed."""

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import running_dev
from tests.integration.conftest import MARIADB, a_form

REFUSE_INSERTS = {
    # Each fails the statement that stores the application with a data error, as a value too
    # long for its column does: an error the backend logs whole, with its statement.
    "sqlite": "CREATE TRIGGER refuse_applications BEFORE INSERT ON applications"
    " BEGIN SELECT zeroblob(2000000000); END",
    "mysql": "CREATE TRIGGER refuse_applications BEFORE INSERT ON applications FOR EACH ROW"
    " SIGNAL SQLSTATE '22001' SET MYSQL_ERRNO = 1406, MESSAGE_TEXT = 'Data too long'",
}


@pytest.fixture
def failing_inserts(database) -> Iterator[None]:
    """The applications table refuses every insert, for the length of one test."""
    with database.transaction() as connection:
        connection.execute(text(REFUSE_INSERTS[database.engine.dialect.name]))
    yield
    with database.transaction() as connection:
        connection.execute(text("DROP TRIGGER refuse_applications"))


def test_a_database_error_is_logged_without_the_row(api, failing_inserts, caplog):
    form = a_form(email="only.in.the.row@example.com", phone="+86 139 1234 5678")
    answer = api.post("/applications", form)
    assert answer.status_code == 500 and answer.get_json()["error"] == "internal_error"
    assert "INSERT INTO applications" in caplog.text  # the error is logged, with its statement
    for typed in (form["email"], form["phone"], form["company"], form["feature_code"]):
        assert typed not in caplog.text


@pytest.fixture
def database_with_a_password() -> Iterator[tuple[str, str]]:
    """A MariaDB database and an account with a password: its URL, and the password."""
    name, password = f"dingpass_pw_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    admin = create_engine(f"{MARIADB}/test")
    with admin.begin() as connection:
        connection.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        connection.execute(text(f"CREATE USER '{name}'@'%' IDENTIFIED BY :pw"), {"pw": password})
        connection.execute(text(f"GRANT ALL ON {name}.* TO '{name}'@'%'"))
    try:
        yield f"mysql+pymysql://{name}:{password}@127.0.0.1:3306/{name}", password
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP USER '{name}'@'%'"))
            connection.execute(text(f"DROP DATABASE {name}"))
        admin.dispose()


@pytest.mark.mariadb
def test_db_upgrade_prints_the_database_without_its_password(run_cli, database_with_a_password):
    url, password = database_with_a_password
    result = run_cli("db", "upgrade", env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "Database at revision" in result.output and ":***@127.0.0.1" in result.output
    assert password not in result.output


@pytest.mark.mariadb
def test_dev_prints_the_database_without_its_password(
    tmp_path, monkeypatch, database_with_a_password
):
    url, password = database_with_a_password
    monkeypatch.setenv("DATABASE_URL", url)
    with running_dev(tmp_path) as (_, printed):
        assert "dingpass is running (mysql+pymysql://" in printed and ":***@127.0.0.1" in printed
        assert password not in printed
