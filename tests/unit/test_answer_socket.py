"""An answer's head waits for its body's first bytes and leaves with them."""

import socket

import pytest

from backend.answer_socket import LARGE_BODY_BYTES, HeadHoldingSocket

HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"


class RecordingSocket:
    """A socket that keeps what is written to it, in order, and what else it is asked to do."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self.writes.append(data)

    def sendfile(self, file: object, offset: int = 0, count: int | None = None) -> int:
        self.writes.append(b"<file>")
        return 0

    def shutdown(self, how: int) -> None:
        self.writes.append(b"<shutdown>")


@pytest.fixture
def sock():
    return RecordingSocket()


def answer_to(sock: RecordingSocket, *writes: bytes, head_request: bool = False) -> None:
    answer = HeadHoldingSocket(sock, head_request=head_request)  # type: ignore[arg-type]
    for data in writes:
        answer.sendall(data)


def test_the_head_waits_for_the_body_and_leaves_with_it(sock):
    answer_to(sock, HEAD)
    assert sock.writes == []
    answer_to(sock, HEAD, b"{}")
    assert sock.writes == [HEAD + b"{}"]


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 204 NO CONTENT\r\n\r\n",
        b"HTTP/1.1 204\r\n\r\n",
        b"HTTP/1.0 304 NOT MODIFIED\r\nContent-Length: 12\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 00\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nX-Content-Length: 10\r\n\r\n",
    ],
)
def test_a_head_that_no_sized_body_follows_leaves_at_once(sock, head):
    answer_to(sock, head)
    assert sock.writes == [head]


def test_the_answer_to_a_head_request_leaves_at_once(sock):
    answer_to(sock, HEAD, head_request=True)
    assert sock.writes == [HEAD]


def test_an_interim_answer_leaves_at_once_and_the_head_after_it_waits(sock):
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    answer_to(sock, hints, HEAD, b"{}")
    assert sock.writes == [hints, HEAD + b"{}"]


def test_later_body_writes_go_out_as_they_come(sock):
    answer_to(sock, HEAD, b"{", b"}")
    assert sock.writes == [HEAD + b"{", b"}"]


def test_an_empty_first_body_write_sends_the_head(sock):
    answer_to(sock, HEAD, b"")
    assert sock.writes == [HEAD]


def test_a_body_as_large_as_the_limit_still_leaves_with_its_head(sock):
    body = b"x" * LARGE_BODY_BYTES
    answer_to(sock, HEAD, body)
    assert sock.writes == [HEAD + body]


def test_a_larger_body_follows_its_head_without_being_copied_onto_it(sock):
    body = b"x" * (LARGE_BODY_BYTES + 1)
    answer_to(sock, HEAD, body)
    assert sock.writes == [HEAD, body]


def test_a_file_answer_sends_its_head_before_the_file(sock):
    answer = HeadHoldingSocket(sock, head_request=False)  # type: ignore[arg-type]
    answer.sendall(HEAD)
    answer.sendfile(object())
    assert sock.writes == [HEAD, b"<file>"]


def test_nothing_overtakes_a_held_head(sock):
    answer = HeadHoldingSocket(sock, head_request=False)  # type: ignore[arg-type]
    answer.sendall(HEAD)
    answer.shutdown(socket.SHUT_WR)  # gunicorn's close after an app fails mid-answer
    assert sock.writes == [HEAD, b"<shutdown>"]


def test_flush_sends_a_waiting_head_and_nothing_more(sock):
    answer = HeadHoldingSocket(sock, head_request=False)  # type: ignore[arg-type]
    answer.sendall(HEAD)
    answer.flush()
    answer.flush()
    assert sock.writes == [HEAD]
