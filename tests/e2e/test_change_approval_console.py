"""Changes approved in the DingTalk sandbox's console, as chromium draws it: what the approver
reads, approving with the button, an employee's request filled in on the start page, and the
outcome read back as a comment on the instance and a work notification."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page

import tests.integration.conftest as integration
import tests.integration.test_change_approvals as approvals
from tests.conftest import wait_for
from tests.integration.test_change_approvals import (
    A_REQUEST,
    EMPLOYEE,
    REQUEST_FORM,
    opened,
    until,
)
from tests.integration.test_changes_cloud import NEW_NETWORK

# The stack of tests/integration/test_change_approvals.py (both sandboxes, the backend, the
# approval function and a runner loop), on SQLite and MariaDB: pytest finds a fixture by the
# name it is bound to in the module, so binding these is enough to use them here.
database_url, database, config, dingtalk_config = (
    integration.database_url,
    integration.database,
    integration.config,
    integration.dingtalk_config,
)
sandbox, cloud, change_config, itsm, callbacks, running = (
    approvals.sandbox,
    approvals.cloud,
    approvals.change_config,
    approvals.itsm,
    approvals.callbacks,
    approvals.running,
)
SECONDS = 30
"""How long the runner (polling every 0.2 s) and the cloud (ready after 0.2 s) may take."""
CLOUD_KINDS = ("vpc", "vswitch", "security_group", "instance")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A desktop page in Chinese, as an approver at a desk sees the console."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    yield context.new_page()
    context.close()


def instance_on(page: Page, instance_id: str) -> Locator:
    return page.locator(f'section[data-instance="{instance_id}"]')


def values_shown(section: Locator) -> dict[str, str]:
    """The form's values as the page shows them: each label (dt) to its value (dd)."""
    labels = section.locator(".values dt").all_inner_texts()
    return dict(zip(labels, section.locator(".values dd").all_inner_texts(), strict=True))


def comments_after_reload(page: Page, instance_id: str) -> list[str]:
    """The comments on an instance, the console reloaded to show the latest."""
    page.reload()
    return instance_on(page, instance_id).locator(".comments .comment .text").all_inner_texts()


def the_comment(page: Page, instance_id: str) -> str:
    """The one comment on an instance, once the console shows it."""
    assert wait_for(lambda: comments_after_reload(page, instance_id), SECONDS)
    (comment,) = comments_after_reload(page, instance_id)
    return comment


def notices_of(page: Page, sandbox_url: str, user_id: str) -> list[str]:
    """The work notifications one employee got, as the notifications page shows them."""
    page.goto(f"{sandbox_url}/console/notifications")
    return page.locator(f'section[data-user="{user_id}"] article.notice').all_inner_texts()


def start_in_browser(page: Page, sandbox_url: str, name: str) -> str:
    """The instance of a cloud resource request, filled in and sent on the start page as 张三."""
    page.goto(f"{sandbox_url}/console/start/{REQUEST_FORM}")
    page.select_option("#originatorUserId", EMPLOYEE)
    page.fill("#TextField-NAME", name)
    page.select_option("#DDSelectField-TYPE", A_REQUEST["实例规格"])
    page.select_option("#DDSelectField-ZONE", A_REQUEST["可用区"])
    page.fill("#TextField-IMAGE", A_REQUEST["镜像"])
    page.fill("#NumberField-DISK", A_REQUEST["系统盘(GiB)"])
    page.fill("#TextareaField-WHY", A_REQUEST["用途"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{sandbox_url}/")
    assert not page.locator(".error[role=alert]").count()
    originator = page.locator(".originator", has_text="张三")
    started = page.locator("section.instance").filter(has=originator)
    instance_id = started.get_attribute("data-instance")
    assert instance_id
    return instance_id


def approve_in_browser(page: Page, sandbox_url: str, instance_id: str) -> None:
    page.goto(sandbox_url)
    instance_on(page, instance_id).locator("button.approve").click()
    page.wait_for_url(f"{sandbox_url}/")


def test_the_approver_reads_the_change_in_the_console(itsm, sandbox, running, page):
    change = itsm.send("POST", "/api/v1/changes", NEW_NETWORK).get_json()
    instance_id = opened(itsm, change["id"])

    page.goto(sandbox.url)
    shown = values_shown(instance_on(page, instance_id))
    assert shown["变更编号"] == change["id"]
    assert shown["变更类型"] == "ECS 实例 (ecs.instance)"
    assert shown["地域"] == "cn-hangzhou"
    spec = shown["规格"].splitlines()
    assert "instance_type: ecs.g7.large" in spec
    assert "image_id: ubuntu_22_04_x64_20G_alibase_20240130.vhd" in spec
    assert "name: web-1" in spec
    assert shown["数量"].startswith("4 个资源：")
    assert shown["申请人"] == "itsm（API）"


def test_approving_in_the_browser_runs_the_change_and_comments_its_resources(
    itsm, sandbox, callbacks, running, cloud, page
):
    change = itsm.send("POST", "/api/v1/changes", NEW_NETWORK).get_json()
    instance_id = opened(itsm, change["id"])

    approve_in_browser(page, sandbox.url, instance_id)
    done = until(itsm, change["id"], "succeeded", "failed", seconds=SECONDS)
    assert done["status"] == "succeeded", done
    made = [resource["id"] for resource in done["resources"]]
    assert sorted(made_id.split("-")[0] for made_id in made) == ["i", "sg", "vpc", "vsw"]
    comment = the_comment(page, instance_id)
    assert change["id"] in comment and "已完成" in comment
    assert all(made_id in comment for made_id in made), (made, comment)


def test_an_employees_request_started_in_the_browser_is_answered_with_its_instance(
    sandbox, callbacks, running, cloud, page
):
    instance_id = start_in_browser(page, sandbox.url, A_REQUEST["实例名称"])
    approve_in_browser(page, sandbox.url, instance_id)

    assert wait_for(lambda: cloud.count("instance") == 1, SECONDS)
    (ecs,) = (resource.id for resource in cloud.state.all("instance"))
    comment = the_comment(page, instance_id)
    assert "已完成" in comment and ecs in comment
    assert wait_for(lambda: notices_of(page, sandbox.url, EMPLOYEE), SECONDS)
    (notice,) = notices_of(page, sandbox.url, EMPLOYEE)
    assert ecs in notice


def test_a_request_with_an_invalid_name_is_answered_with_which_value_and_why(
    sandbox, callbacks, running, cloud, page
):
    instance_id = start_in_browser(page, sandbox.url, "1-bad")
    approve_in_browser(page, sandbox.url, instance_id)

    comment = the_comment(page, instance_id)
    (line,) = (line for line in comment.splitlines() if "实例名称「1-bad」" in line)
    assert "starting with a letter" in line, comment  # why: ECS's rule for a name
    assert "未创建任何资源" in comment
    assert [cloud.count(kind) for kind in CLOUD_KINDS] == [0, 0, 0, 0]
