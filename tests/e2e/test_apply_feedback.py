"""What the apply page tells a person about the form and the link, at phone size."""

import re

from playwright.sync_api import expect

from tests.conftest import a_form
from tests.e2e.test_apply_page import APPLY, FEATURE, fill_form

CRM = "/apply?product=acme-crm"


def test_the_error_summary_follows_the_language_switch_and_the_fields_as_they_are_now(stack, phone):
    phone.goto(stack + APPLY)
    fill_form(phone, email="zhang@", company="")
    phone.get_by_role("button", name="提交申请").click()
    summary = phone.get_by_test_id("summary")
    expect(summary).to_have_text("有 2 处需要修改，请查看标出的字段。")
    phone.get_by_role("button", name="English").click()
    expect(summary).to_have_text("2 fields need attention; see the marked fields.")
    phone.shot("1-english")
    phone.get_by_label("Email").fill("zhang@example.com")
    expect(summary).to_have_text("1 field needs attention; see the marked fields.")
    phone.get_by_label("Company").fill("杭州示例网络科技有限公司")
    expect(summary).to_be_hidden()


def test_a_quantity_over_the_limit_is_told_the_allowed_range(stack, phone):
    phone.goto(stack + CRM)
    quantity = phone.get_by_label("数量")
    quantity.fill("600")
    quantity.blur()
    expect(phone.locator("#f-quantity-error")).to_have_text("请选择 1 到 500 之间的数量。")
    phone.shot("quantity")


def test_a_lower_case_feature_code_in_the_link_is_shown_and_sent_upper_cased(stack, phone):
    phone.goto(stack + APPLY.replace(FEATURE, FEATURE.lower()))
    expect(phone.get_by_label("机器特征码")).to_have_value(FEATURE)
    fill_form(phone, email="zheng@example.com")
    with phone.expect_request("**/api/applications") as sent:
        phone.get_by_role("button", name="提交申请").click()
    expect(phone.get_by_test_id("number")).to_be_visible()
    assert sent.value.post_data_json["feature_code"] == FEATURE


def test_a_feature_code_typed_in_lower_case_is_upper_cased_when_the_field_is_left(stack, phone):
    phone.goto(stack + CRM)
    code = phone.get_by_label("机器特征码")
    code.fill("k7q2m9xhzp3r")
    code.blur()
    expect(code).to_have_value("K7Q2M9XHZP3R")
    expect(phone.locator("#f-feature_code-error")).to_be_empty()


def test_a_link_to_an_unknown_product_says_the_link_is_wrong_and_whom_to_ask(stack, phone):
    phone.goto(stack + f"/apply?product=nope&feature={FEATURE}")
    bad_link = phone.get_by_test_id("bad-link")
    expect(bad_link).to_have_text(re.compile(r"此链接有误.*“nope”.*向您展示此二维码的软件供应商"))
    expect(phone.get_by_label("产品")).to_have_value("")
    expect(phone.get_by_label("产品")).to_be_enabled()
    phone.shot("1-chinese")
    phone.get_by_role("button", name="English").click()
    expect(bad_link).to_have_text(
        re.compile(r"This link is wrong.*“nope”.*Ask the vendor whose software showed you")
    )
    phone.shot("2-english")


def test_the_page_names_an_icon_and_every_file_it_loads_is_there(stack, phone):
    failed = []
    phone.on("response", lambda answer: answer.status >= 400 and failed.append(answer.url))
    phone.goto(stack + APPLY)
    expect(phone.get_by_label("机器特征码")).to_have_value(FEATURE)
    icon = phone.locator("link[rel=icon]")
    expect(icon).to_have_attribute("href", "/favicon.ico")
    answer = phone.request.get(stack + "/favicon.ico")
    assert answer.status == 200 and answer.headers["content-type"] == "image/x-icon"
    assert failed == []


def test_a_refusal_from_the_server_in_the_summary_follows_the_language_switch(stack, phone):
    for _ in range(5):  # the limit per email (RATE_LIMIT_PER_EMAIL) used up
        phone.request.post(stack + "/api/applications", data=a_form(email="often@example.com"))
    phone.goto(stack + APPLY)
    fill_form(phone, email="often@example.com")
    phone.get_by_role("button", name="提交申请").click()
    summary = phone.get_by_test_id("summary")
    expect(summary).to_contain_text("提交次数过多")
    phone.get_by_role("button", name="English").click()
    expect(summary).to_contain_text("Too many applications")


def test_the_status_pages_not_found_follows_the_language_switch(stack, phone):
    phone.goto(stack + "/status/abcdefghijklmnopqrstuvwx")
    expect(phone.get_by_role("alert")).to_have_text("找不到该申请，请检查链接。")
    phone.get_by_role("button", name="English").click()
    expect(phone.get_by_role("alert")).to_have_text(
        "No application has this link; please check it."
    )
