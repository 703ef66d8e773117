"""The connection pool: a connection that died while idle is never handed out, and none is
handed out in the middle of a transaction; TLS is what DATABASE_URL asks for."""

import time

import pytest
from cryptography import x509
from sqlalchemy import exc, text

from backend.storage import database as database_module
from backend.storage.schema import callback_nonces
from tests.certificates import self_signed

pytestmark = pytest.mark.mariadb


@pytest.fixture
def mariadb(database):
    if database.engine.dialect.name != "mysql":
        pytest.skip("a file database has no connection to lose")
    return database


def test_a_connection_killed_while_idle_is_replaced_before_use(mariadb, database_url, monkeypatch):
    monkeypatch.setattr(database_module, "PING_IDLE", 0.05)
    with mariadb.transaction() as connection:
        first = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
    with database_module.Database(database_url).transaction() as admin:
        admin.execute(text(f"KILL {first}"))  # the server restarted, the NAT cut it: all one
    time.sleep(0.1)
    with mariadb.transaction() as connection:
        assert connection.execute(text("SELECT CONNECTION_ID()")).scalar() != first


def test_a_connection_handed_back_moments_ago_is_used_without_a_ping(mariadb, monkeypatch):
    pings = []
    with mariadb.transaction() as connection:
        raw = connection.connection.dbapi_connection
        monkeypatch.setattr(raw, "ping", lambda **_: pings.append(1), raising=False)
    for _ in range(5):
        with mariadb.transaction() as connection:
            connection.execute(text("SELECT 1"))
    assert pings == []


def test_a_committed_transaction_hands_its_connection_back_without_a_rollback(mariadb):
    def rollbacks() -> int:
        with mariadb.transaction() as connection:
            found = connection.execute(text("SHOW SESSION STATUS LIKE 'Com_rollback'")).one()
        return int(found[1])

    before = rollbacks()
    for _ in range(5):
        with mariadb.transaction() as connection:
            connection.execute(text("SELECT 1"))
    assert rollbacks() == before  # one pooled connection, its ROLLBACKs counted by the server


def test_a_transaction_left_open_is_rolled_back_when_its_connection_is_handed_back(database):
    raw = database.engine.raw_connection()  # as a migration or a library might use it
    _insert_raw(database, raw.cursor(), "left-open")
    raw.close()
    with database.transaction() as connection:
        assert connection.execute(callback_nonces.select()).all() == []


def test_a_url_without_tls_settings_connects_without_trying_tls(mariadb):
    with mariadb.transaction() as connection:
        driver = connection.connection.dbapi_connection
    # PyMySQL's own default tries unverified TLS, loading the system's CA list per connection.
    assert driver.ssl is False


@pytest.mark.parametrize("asked", ["in_the_url", "in_an_option_file"])
def test_a_url_asking_for_tls_is_refused_by_a_server_without_it(
    mariadb, database_url, tmp_path, asked
):
    if _server_offers_tls(mariadb):
        pytest.skip("this server offers TLS: the refusal needs one that does not")
    _, ca_file = self_signed(tmp_path, "db.test", [x509.DNSName("db.test")])
    options = tmp_path / "my.cnf"  # PyMySQL reads its [client] section's ssl-* options
    options.write_text(f"[client]\nssl-ca = {ca_file}\n")
    query = f"ssl_ca={ca_file}" if asked == "in_the_url" else f"read_default_file={options}"
    verified = database_module.Database(f"{database_url}?{query}")
    # Not plain TCP instead: the URL's TLS is required, and checked against its CA.
    with pytest.raises(exc.OperationalError, match="SSL is required"), verified.transaction():
        pass


def test_config_check_says_the_database_is_reached_in_plain(mariadb, database_url, run_cli):
    result = run_cli("config", "check", env={"DATABASE_URL": database_url})
    assert "reachable over plain TCP (?ssl_ca= in DATABASE_URL for TLS)" in result.output


def test_work_after_a_transaction_ended_itself_is_rolled_back(database):
    with database.transaction() as connection:
        connection.rollback()  # ended inside the block: its end is not the commit
        _insert_raw(database, connection.connection.cursor(), "after-the-end")
    with database.transaction() as connection:
        assert connection.execute(callback_nonces.select()).all() == []


def _insert_raw(database, cursor, key: str) -> None:  # type: ignore[no-untyped-def]
    """Begin a transaction on the DBAPI cursor and add a nonce in it, past SQLAlchemy."""
    cursor.execute("BEGIN")
    column = database.engine.dialect.identifier_preparer.quote("key")
    cursor.execute(
        f"INSERT INTO callback_nonces ({column}, seen_at) VALUES ('{key}', '2026-12-01')"  # noqa: S608 -- constants only
    )


def _server_offers_tls(database) -> bool:  # type: ignore[no-untyped-def]
    with database.transaction() as connection:
        found = connection.execute(text("SHOW VARIABLES LIKE 'have_ssl'")).one_or_none()
    return found is not None and found[1] == "YES"
