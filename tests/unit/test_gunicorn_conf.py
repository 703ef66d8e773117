"""How much of a connection's bytes make a request whole, before a gunicorn thread takes it."""

from backend.gunicorn_conf import BODY_LIMIT_BYTES, TOO_LARGE, request_size

HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_request_without_a_body_is_whole_with_its_head():
    assert request_size(HEAD + b"GET /next") == len(HEAD)


def test_a_head_still_arriving_is_not_whole():
    assert request_size(HEAD[:-2]) is None


def test_a_small_body_must_arrive_with_the_head():
    head = b"POST /applications HTTP/1.1\r\ncontent-length: 5\r\n\r\n"
    assert request_size(head + b"{}") == len(head) + 5


def test_a_body_over_the_limit_is_too_large_before_it_is_read():
    head = f"POST /a HTTP/1.1\r\nContent-Length: {BODY_LIMIT_BYTES + 1}\r\n\r\n".encode()
    assert request_size(head) == TOO_LARGE


def test_a_chunked_body_is_whole_with_its_last_chunk_and_trailers():
    head = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"2\r\n{}\r\n0\r\n\r\n"
    assert request_size(head + body[:-2]) is None
    assert request_size(head + body + b"GET /next") == len(head + body)


def test_a_chunked_body_over_the_limit_is_too_large():
    head = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
    assert request_size(head + chunk + chunk) == TOO_LARGE


def test_a_body_after_100_continue_must_arrive_too():
    head = b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    assert request_size(head) == len(head) + 2
