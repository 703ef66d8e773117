"""The sandbox's approval forms: their components, their schema as DingTalk answers it, and
the checks DingTalk's form validation makes on the values an instance is started with."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

LICENSE_FORM_NAME = "许可申请"
"""The name of the form dingpass opens license applications on."""


@dataclass(frozen=True)
class Component:
    """One control of a form: its kind (``componentName``), id and label."""

    component_name: str  # TextField | TextareaField | NumberField | DDSelectField
    id: str
    label: str
    required: bool = False
    options: tuple[str, ...] = ()
    """A DDSelectField's choices: a value must be one of them."""


@dataclass(frozen=True)
class FormTemplate:
    """An approval form, made in DingTalk by the enterprise or by an app."""

    process_code: str
    name: str
    components: tuple[Component, ...]

    def component(self, label: str) -> Component | None:
        """The component labelled ``label``, or None."""
        return next((c for c in self.components if c.label == label), None)


def text_form(process_code: str, name: str, labels: Iterable[str]) -> FormTemplate:
    """A form of text fields only, one per label, with ids like TextField-1."""
    components = tuple(
        Component("TextField", f"TextField-{n}", label) for n, label in enumerate(labels, 1)
    )
    return FormTemplate(process_code, name, components)


CLOUD_REQUEST_FORM = FormTemplate(
    "PROC-SANDBOX-CLOUD-REQUEST",
    "云资源申请",
    (
        Component("TextField", "TextField-NAME", "实例名称", required=True),
        Component(
            "DDSelectField",
            "DDSelectField-TYPE",
            "实例规格",
            required=True,
            options=("ecs.g7.large", "ecs.c7.large", "ecs.t6-c1m1.large"),
        ),
        Component(
            "DDSelectField",
            "DDSelectField-ZONE",
            "可用区",
            required=True,
            options=("cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"),
        ),
        Component("TextField", "TextField-IMAGE", "镜像", required=True),
        Component("NumberField", "NumberField-DISK", "系统盘(GiB)"),
        Component("TextareaField", "TextareaField-WHY", "用途"),
    ),
)
"""The "cloud resource request" form an enterprise made in DingTalk for its employees."""


def refused_label(form: FormTemplate, values: Iterable[Mapping[str, Any]]) -> str | None:
    """The first label DingTalk's form validation fails: a component the form lacks, or a
    select's value that is not among its options; None if every value passes."""
    for value in values:
        component = form.component(value["name"])
        if component is None:
            return str(value["name"])
        if component.options and value["value"] not in ("", *component.options):
            return component.label  # left empty, an optional select is not chosen
    return None


def missing_required(form: FormTemplate, values: Mapping[str, str]) -> str | None:
    """The first required label without a value (the DingTalk client will not send one)."""
    return next(
        (c.label for c in form.components if c.required and not values.get(c.label, "").strip()),
        None,
    )


def not_a_number(form: FormTemplate, values: Mapping[str, str]) -> str | None:
    """The first NumberField whose value is not a number (the client only types numbers)."""
    for component in form.components:
        value = values.get(component.label, "")
        if component.component_name == "NumberField" and value and not _numeric(value):
            return component.label
    return None


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def stored_value(form: FormTemplate | None, name: str, value: Any) -> dict[str, Any]:
    """A form value as GetProcessInstance returns it: id and componentType from the form."""
    component = form.component(name) if form is not None else None
    if component is None:  # only an instance a test put in state directly can get here
        return {"id": "", "name": name, "value": value, "componentType": "TextField"}
    return {
        "id": component.id,
        "name": name,
        "value": value,
        "componentType": component.component_name,
    }


def schema_item(component: Component) -> dict[str, Any]:
    """One ``schemaContent.items[]`` entry of the form-schema API."""
    props: dict[str, Any] = {
        "id": component.id,
        "label": component.label,
        "required": component.required,
    }
    if component.options:
        props["options"] = list(component.options)  # documented as an array of strings
    return {"componentName": component.component_name, "props": props}


def console_problem(form: FormTemplate, values: Mapping[str, str]) -> str | None:
    """Why DingTalk's client would not submit ``values`` (label to value) on ``form``, in
    words a person reads; None if it would."""
    for label, value in values.items():
        component = form.component(label)
        if component is None:
            return f"表单数据校验失败，失败控件：{label}（表单「{form.name}」没有这个控件）"
        if value and component.options and value not in component.options:
            choices = "、".join(component.options)
            return f"表单数据校验失败，失败控件：{label}（只能选 {choices}）"
    if (missing := missing_required(form, values)) is not None:
        return f"表单数据校验失败，必填控件未填写：{missing}"
    if (wrong := not_a_number(form, values)) is not None:
        return f"表单数据校验失败，失败控件：{wrong}（须是数字）"
    return None
