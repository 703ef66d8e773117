"""The frontend's kept-alive connections to the backend (frontend/backend_pool.py)."""

import ipaddress
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509

from frontend.backend_pool import BackendPool
from frontend.exceptions import BackendTimeout, BackendUnavailable
from tests.certificates import self_signed
from tests.integration.conftest import KeptAliveServer


def get(pool: BackendPool, path: str = "/") -> bytes:
    answer = pool.exchange("GET", path, None, {})
    assert answer.status == 200
    return answer.body


def test_calls_one_after_another_share_one_connection(kept_alive, pool_for):
    pool = pool_for(kept_alive.url)
    assert [get(pool) for _ in range(3)] == [b"ok"] * 3
    assert kept_alive.connections() == 1


def at_once(pool: BackendPool, path: str, calls: int) -> None:
    threads = [threading.Thread(target=get, args=(pool, path)) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_calls_at_once_each_have_a_connection_and_the_idle_ones_are_kept(kept_alive, pool_for):
    pool = pool_for(kept_alive.url)
    at_once(pool, "/slow", 3)
    at_once(pool, "/slow", 3)
    assert kept_alive.connections() == 3


def test_no_more_idle_connections_are_kept_than_the_pool_holds(kept_alive, pool_for):
    pool = pool_for(kept_alive.url, size=2)
    at_once(pool, "/slow", 3)
    at_once(pool, "/slow", 3)
    assert kept_alive.connections() == 4


def test_a_connection_the_backend_closed_while_idle_is_not_used_again(kept_alive, pool_for):
    pool = pool_for(kept_alive.url)
    get(pool, "/close")
    time.sleep(0.1)  # the backend's end is closed by now
    assert get(pool) == b"ok"
    assert kept_alive.connections() == 2


def test_an_answer_that_closes_its_connection_leaves_none_behind(kept_alive, pool_for):
    pool = pool_for(kept_alive.url)
    get(pool, "/last")
    assert get(pool) == b"ok"
    assert kept_alive.connections() == 2


def test_closing_the_pool_closes_a_connection_in_use_once_its_call_is_done(kept_alive, pool_for):
    pool = pool_for(kept_alive.url)
    call = threading.Thread(target=get, args=(pool, "/slow"))
    call.start()
    time.sleep(0.3)  # the call is under way
    pool.close()
    call.join()
    assert get(pool) == b"ok"
    assert kept_alive.connections() == 2


def test_a_url_without_a_port_means_its_schemes_port():
    assert BackendPool("http://[::1]/backend", 1, 1, 1).port == 80
    assert BackendPool("https://backend.example.com/", 1, 1, 1).port == 443


def test_a_backend_that_refuses_connections_is_unavailable(pool_for):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BackendUnavailable, match="no connection"):
        get(pool_for(f"http://127.0.0.1:{port}"))


def test_a_backend_slower_than_the_read_timeout_is_a_timeout_and_its_connection_is_dropped(
    kept_alive, pool_for
):
    pool = pool_for(kept_alive.url, read_timeout=0.3, connect_timeout=5)
    with pytest.raises(BackendTimeout, match="no answer within 0.3 s"):
        get(pool, "/slow")
    time.sleep(1)  # the late answer arrives on the dropped connection, not on the next call's
    assert get(pool) == b"ok"
    assert kept_alive.connections() == 2


@contextmanager
def served_over_tls(folder: Path, name: x509.GeneralName):
    """An https backend on loopback, its certificate self-signed for ``name``; and a context
    trusting that certificate."""
    server_context, ca_file = self_signed(folder, "backend.test", [name])
    server = KeptAliveServer(tls=server_context)
    try:
        yield server, ssl.create_default_context(cafile=ca_file)
    finally:
        server.stop()


@pytest.fixture
def tls_backend(tmp_path):
    with served_over_tls(tmp_path, x509.IPAddress(ipaddress.ip_address("127.0.0.1"))) as both:
        yield both


def test_an_https_backend_whose_certificate_checks_out_is_called_over_tls(tls_backend, pool_for):
    server, trusting = tls_backend
    pool = pool_for(server.url, tls=trusting)
    assert [get(pool), get(pool)] == [b"ok", b"ok"]
    assert server.connections() == 1


def test_an_https_backend_whose_certificate_the_system_does_not_trust_is_never_called(
    tls_backend, pool_for
):
    server, _ = tls_backend
    with pytest.raises(BackendUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        get(pool_for(server.url))
    assert server.ports == []


def test_an_https_backend_whose_certificate_names_another_host_is_never_called(tmp_path, pool_for):
    with served_over_tls(tmp_path, x509.DNSName("elsewhere.test")) as (server, trusting):
        with pytest.raises(BackendUnavailable, match="mismatch"):
            get(pool_for(server.url, tls=trusting))
        assert server.ports == []
