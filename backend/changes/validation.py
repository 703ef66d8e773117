"""Checking a spec against declared parameters: clean values, or a message per field."""

import re
from collections.abc import Mapping
from typing import Any

from backend.cloud.plugins.base import Param
from backend.exceptions import Message

KINDS: dict[str, type[Any]] = {"str": str, "int": int, "bool": bool, "list": list}
KIND_NAMES = {
    "str": ("字符串", "a string"),
    "int": ("整数", "a whole number"),
    "bool": ("布尔值", "true or false"),
    "list": ("字符串列表", "a list of strings"),
}


def message(zh: str, en: str) -> Message:
    """A per-field message in both languages."""
    return {"zh": zh, "en": en}


def validate(
    spec: Any, parameters: Mapping[str, Param]
) -> tuple[dict[str, Any], dict[str, Message]]:
    """``spec`` checked against ``parameters``: its values with defaults filled, and errors.

    Fields are named ``spec.<name>`` in the errors, as the caller wrote them.
    """
    if not isinstance(spec, dict):
        return {}, {"spec": message("spec 应为 JSON 对象。", "spec must be a JSON object.")}
    errors: dict[str, Message] = {}
    known = ", ".join(sorted(parameters))
    for name in sorted(set(spec) - set(parameters)):
        errors[f"spec.{name}"] = message(
            f"未知参数；可用参数：{known}。", f"Unknown parameter; the known ones are: {known}."
        )
    clean: dict[str, Any] = {}
    for name, param in parameters.items():
        if spec.get(name) is None:
            if param.required:
                errors[f"spec.{name}"] = message("必填。", f"Required: {param.help or name}.")
            elif param.default is not None:
                # As JSON has it (a list, not a tuple): a spec is checked again once planned.
                default = param.default
                clean[name] = list(default) if isinstance(default, tuple) else default
            continue
        problem = check_value(spec[name], param)
        if problem is None:
            clean[name] = spec[name]
        else:
            errors[f"spec.{name}"] = problem
    return clean, errors


def check_value(value: Any, param: Param) -> Message | None:
    """What is wrong with ``value`` for ``param``, or None."""
    expected = KINDS[param.kind]
    # bool is an int in Python; JSON's true is not a number.
    if not isinstance(value, expected) or (param.kind == "int" and isinstance(value, bool)):
        zh, en = KIND_NAMES[param.kind]
        return message(f"应为{zh}。", f"Must be {en}.")
    if param.kind == "list":
        return _check_list(value, param)
    if param.choices is not None and value not in param.choices:
        allowed = ", ".join(str(choice) for choice in param.choices)
        return message(f"可选值：{allowed}。", f"Must be one of: {allowed}.")
    if param.kind == "int":
        return _check_range(value, param, "", "")
    if param.kind == "str":
        return _check_text(value, param)
    return None


def _check_list(value: list[Any], param: Param) -> Message | None:
    if not all(isinstance(item, str) for item in value):
        return message("应为字符串列表。", "Must be a list of strings.")
    for item in value:
        problem = _check_text(item, param)
        if problem is not None:
            return message(f"“{item}”：{problem['zh']}", f"{item!r}: {problem['en']}")
    return None


def _check_text(value: str, param: Param) -> Message | None:
    problem = _check_range(len(value), param, "长度", "its length ")
    if problem is not None:
        return problem
    if param.pattern is not None and not re.fullmatch(param.pattern, value):
        hint = param.help or f"the pattern {param.pattern}"
        return message("格式不正确。", f"Not valid: {hint}.")
    return None


def _check_range(number: int, param: Param, zh: str, en: str) -> Message | None:
    low, high = param.low, param.high
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f"{low if low is not None else '-∞'} – {high if high is not None else '∞'}"
        return message(
            f"{zh}应在 {bounds} 之间。", f"{en or ''}must be within {bounds}.".capitalize()
        )
    return None
