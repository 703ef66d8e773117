"""What people read in DingTalk about a change fits what DingTalk takes."""

import json

from backend.changes.summary import refusal_comment, refusal_notice


def test_a_refusal_notice_fits_dingtalks_2048_bytes_however_many_problems():
    problems = [f"- 实例名称「{'名' * 200}」：格式不正确（Not valid）" for _ in range(8)]
    msg = refusal_notice("sbx-000001-abcd", problems)
    assert len(json.dumps(msg, ensure_ascii=False).encode()) <= 2048


def test_a_refusal_notice_names_its_instance():
    # DingTalk drops a second message of the same content to the same person within a day.
    first = refusal_notice("sbx-000001-abcd", ["- 镜像（未填写）：必填"])
    second = refusal_notice("sbx-000002-ef01", ["- 镜像（未填写）：必填"])
    assert first != second and "sbx-000001-abcd" in first["markdown"]["text"]


def test_a_refusal_comment_fits_dingtalks_1024_characters():
    assert len(refusal_comment(["- " + "长" * 600, "- " + "长" * 600])) <= 1024
