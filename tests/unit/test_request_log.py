"""Log lines keep a status token's first 4 characters only, wherever a path carries one."""

import logging

import pytest

from backend.request_log import RedactTokens, redact_tokens

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
