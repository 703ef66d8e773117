"""DingTalk's msgUuid for a batch: stable on retries, never another batch's."""

import dataclasses
from datetime import datetime, timezone

from backend.robots.jobs import batch_uuid
from backend.robots.outbox import RobotMessage
from backend.subjects import Subject

AT = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
FIRST = RobotMessage(1, "ops", "refusal", Subject.application(1), {}, AT, 1, None)
BASE = "https://apply.example.com"


def test_a_batch_sent_again_keeps_its_msg_uuid():
    assert batch_uuid(BASE, [FIRST]) == batch_uuid(BASE, [dataclasses.replace(FIRST)])


def test_the_same_ids_after_a_database_reset_make_another_msg_uuid():
    later = dataclasses.replace(FIRST, recorded_at=AT.replace(day=29))
    assert batch_uuid(BASE, [FIRST]) != batch_uuid(BASE, [later])


def test_another_deployment_posting_to_the_robot_makes_another_msg_uuid():
    assert batch_uuid(BASE, [FIRST]) != batch_uuid("https://other.example.com", [FIRST])
