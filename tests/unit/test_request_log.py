"""The one log format: key=value lines with the request id, one line per record, and a status
token's first 4 characters only, wherever a path carries one."""

import logging
import re
import sys
import threading

import pytest

from backend.request_log import (
    KeyValueFormatter,
    RedactTokens,
    log_uncaught,
    logging_for,
    redact_tokens,
    request_id_from,
)

TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        (f'"GET /status/{TOKEN} HTTP/1.1" 200', '"GET /status/AbCd… HTTP/1.1" 200'),
        (f"GET /api/applications/{TOKEN}?x=1", "GET /api/applications/AbCd…?x=1"),
        (f"https://apply.example.com/status/{TOKEN}", "https://apply.example.com/status/AbCd…"),
        (
            f"GET /applications/{TOKEN} and /status/{TOKEN}",
            "GET /applications/AbCd… and /status/AbCd…",
        ),
    ],
)
def test_a_token_in_a_path_keeps_its_first_four_characters(line, redacted):
    assert redact_tokens(line) == redacted


def test_credentials_in_logged_request_headers_are_hidden():
    # As FC 2.0's SDK logs a refused call at ERROR: the headers it sent, as a dict.
    line = (
        "Client error: 403. Request headers: {'x-fc-security-token': 'CAIS.sts-token', "
        "'Authorization': 'FC STS.id:c2lnbmF0dXJl', \"x-acs-security-token\": \"CAIS.other\", "
        "'x-fc-access-key-secret': 'secret', 'Date': 'Mon, 30 Nov 2026 13:00:00 GMT'}"
    )
    hidden = redact_tokens(line)
    assert not {"CAIS.sts-token", "c2lnbmF0dXJl", "CAIS.other", "'secret'"} & set(
        re.findall(r"CAIS\.[\w-]+|c2lnbmF0dXJl|'secret'", hidden)
    )
    assert "'x-fc-security-token': '***'" in hidden and "'Date': 'Mon, 30 Nov" in hidden


@pytest.mark.parametrize(
    "line", ['"POST /applications HTTP/1.1" 201', "GET /status/abc", "GET /qr"]
)
def test_paths_without_a_token_stay_as_they_are(line):
    assert redact_tokens(line) == line


def test_the_filter_redacts_the_formatted_message():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, '"%s" %s', (f"GET /status/{TOKEN}", 200), None
    )
    RedactTokens().filter(record)
    assert record.getMessage() == '"GET /status/AbCd…" 200'


LINE = re.compile(
    r"time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(?P<level>[A-Z]+) logger=(?P<logger>\S+)"
    r" request_id=(?P<request_id>\S+) msg=(?P<msg>.*)"
)


def formatted(message: str, *args: object, exc_info=None) -> str:
    record = logging.LogRecord("backend.x", logging.INFO, __file__, 1, message, args, exc_info)
    return KeyValueFormatter().format(record)


def test_a_line_is_keys_and_values_with_the_message_last():
    line = LINE.fullmatch(formatted("ran %d job(s)", 2))
    assert line and line.group("level", "logger", "request_id", "msg") == (
        "INFO",
        "backend.x",
        "-",
        "ran 2 job(s)",
    )


def test_a_line_carries_the_id_of_the_request_it_was_logged_in():
    with logging_for("1-66f0a1b2-1a2b3c4d"):
        assert " request_id=1-66f0a1b2-1a2b3c4d msg=in" in formatted("in")
    assert " request_id=- msg=out" in formatted("out")


def test_line_breaks_and_controls_are_escaped_and_colours_dropped():
    line = formatted('"\x1b[1m\x1b[31mGET /x HTTP/1.1\x1b[0m" 404\nforged=1\r\x07 C:\\')
    assert line.endswith('msg="GET /x HTTP/1.1" 404\\nforged=1\\r\\x07 C:\\\\')


def test_a_traceback_stays_on_the_line_of_its_record():
    try:
        raise ValueError(f"no /status/{TOKEN}")
    except ValueError:
        line = formatted("failed", exc_info=sys.exc_info())
    assert "\n" not in line and "\\nValueError: no /status/AbCd…" in line


def test_the_request_id_is_fc_s_when_it_has_that_form():
    assert request_id_from("1-66f0a1b2-1a2b3c4d-5e6f7a8b9c0d") == "1-66f0a1b2-1a2b3c4d-5e6f7a8b9c0d"


@pytest.mark.parametrize("sent", [None, "", "a b", "x\nlevel=ERROR", "é", "x" * 200])
def test_any_other_request_id_is_replaced_by_one_made_up(sent):
    assert re.fullmatch(r"[0-9a-f]{16}", request_id_from(sent))


def test_a_thread_s_uncaught_error_is_a_log_line(monkeypatch, caplog):
    monkeypatch.setattr(threading, "excepthook", log_uncaught)
    worker = threading.Thread(target=lambda: 1 / 0, name="worker")
    worker.start()
    worker.join()
    (record,) = caplog.records
    assert record.getMessage() == "uncaught ZeroDivisionError in thread worker"
    assert record.exc_info[0] is ZeroDivisionError


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        (
            '"POST /topapi/message/corpconversation/asyncsend_v2?access_token=df8ed816a1 HTTP/1.1"',
            '"POST /topapi/message/corpconversation/asyncsend_v2?access_token=*** HTTP/1.1"',
        ),
        (
            "POST /dingtalk/callback?signature=061b&timestamp=17&nonce=eF&msg_signature=061b HTTP",
            "POST /dingtalk/callback?signature=***&timestamp=17&nonce=eF&msg_signature=*** HTTP",
        ),
    ],
)
def test_credentials_in_a_urls_query_are_hidden(line, redacted):
    assert redact_tokens(line) == redacted
