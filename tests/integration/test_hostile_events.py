"""Events from DingTalk that cannot be recorded: refused with a log line, nothing stored."""

import logging

import pytest
from sqlalchemy import String

from approval.callback import NONCE_KEY_WIDTH
from backend.approvals.dispatcher import Dispatcher
from backend.approvals.events import FIELD_WIDTHS
from backend.storage.schema import approval_events, callback_nonces
from tests.conftest import wait_for
from tests.integration.test_stream import Worker


def width(column) -> int:
    assert isinstance(column.type, String)
    return column.type.length


def test_the_limits_are_the_widths_of_the_columns_they_guard():
    assert FIELD_WIDTHS == {
        "processInstanceId": width(approval_events.c.instance_id),
        "type": width(approval_events.c.event_type),
        "result": width(approval_events.c.result),
    }
    assert width(callback_nonces.c.key) == NONCE_KEY_WIDTH


@pytest.fixture
def stream(sandbox, database, clock):
    """A Stream worker connected to the sandbox's gateway; the gateway."""
    gateway = sandbox.deliverer.gateway
    gateway.redeliver_after = 0.3
    running = Worker(sandbox, Dispatcher(database, clock).dispatch)
    yield gateway
    running.stop()


def recorded_events(database) -> int:
    with database.transaction() as connection:
        return connection.exec_driver_sql("select count(*) from approval_events").scalar()


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("processInstanceId", "p" * 65, "processInstanceId is 65 characters; at most 64"),
        ("type", "finish" * 3, "type is 18 characters; at most 16"),
        ("result", "agree" * 4, "result is 20 characters; at most 16"),
        ("processInstanceId", "pi-\ud800", "is not valid Unicode"),
    ],
)
def test_a_stream_event_that_cannot_be_recorded_is_acknowledged_and_logged(
    stream, database, caplog, field, value, reason
):
    event = {"processInstanceId": "pi-0001", "type": "finish", "result": "agree", field: value}
    with caplog.at_level(logging.WARNING, logger="approval.stream"):
        stream.publish(event)
        assert wait_for(lambda: stream.acks and not stream.waiting)
    assert [ack["status"] for ack in stream.acks] == ["SUCCESS"]  # resending would not help
    assert any(reason in record.getMessage() for record in caplog.records)
    assert recorded_events(database) == 0
