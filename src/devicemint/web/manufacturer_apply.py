"""Apply: the intake questionnaire as a form, built from the questionnaire's own definition.

The questions, their order, widgets, choices and hints are read from the pydantic model in
`onboarding.questionnaire` (a new field there is a new question here). The answers go to the
onboarding domain, which validates them; its problems come back by field path and are shown
beside the field they belong to, with everything the person typed kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, get_args, get_origin

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, EmailStr
from pydantic.fields import FieldInfo
from starlette.datastructures import FormData

from devicemint.api.deps import Context
from devicemint.errors import DevicemintError
from devicemint.onboarding.manufacturer import Stage
from devicemint.onboarding.questionnaire import Questionnaire, QuestionnaireInvalid
from devicemint.web.manufacturer_common import PREFIX, Me, acting, attempt, status_of, text
from devicemint.web.pages import Viewer

router = APIRouter(include_in_schema=False)

#: The headings of the form's parts (the questions inside come from the model).
LEGENDS = {"": "Your company", "contacts": "Contacts", "device": "The device you intend to launch"}
MAX_REPEATS = 10


@dataclass(frozen=True)
class Question:
    """One input of the form; `name` is the answer's path (`device.connectivity`)."""

    name: str
    label: str
    widget: str  # text | email | url | number | select | checkboxes | codes
    hint: str = ""
    choices: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return "q-" + self.name.replace(".", "-")


@dataclass(frozen=True)
class Part:
    """A fieldset: the top-level answers, a nested model, or one repeat of a list of models."""

    name: str
    legend: str
    questions: tuple[Question, ...]
    optional: bool = False


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _constraint(info: FieldInfo | Any, attr: str) -> Any:
    for meta in getattr(info, "metadata", ()):
        if getattr(meta, attr, None) is not None:
            return getattr(meta, attr)
    return None


def _item_hint(item: Any) -> str:
    """The description of an Annotated list item (e.g. ISO_COUNTRY)."""
    for meta in get_args(item)[1:] if get_origin(item) is Annotated else ():
        if isinstance(meta, FieldInfo) and meta.description:
            return meta.description
    return ""


def _question(path: str, info: FieldInfo) -> Question:
    """The widget for one scalar or list-of-scalars field, by its type."""
    kind, label, hint = info.annotation, _label(path.rsplit(".", 1)[-1]), info.description or ""
    if isinstance(kind, type) and issubclass(kind, Enum):
        return Question(path, label, "select", hint, tuple(str(m.value) for m in kind))
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        if isinstance(item, type) and issubclass(item, Enum):
            return Question(
                path, label, "checkboxes", hint or "choose all that apply", tuple(str(m.value) for m in item)
            )
        codes = _item_hint(item) or hint
        return Question(path, label, "codes", f"{codes}; separate several with commas".lstrip("; "))
    if kind is int:
        return Question(path, label, "number", hint or "a whole number")
    if kind is EmailStr:
        return Question(path, label, "email", hint or "an email address")
    pattern = _constraint(info, "pattern") or ""
    if pattern.startswith("^https://"):
        return Question(path, label, "url", hint or "an address starting with https://")
    return Question(path, label, "text", hint)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _repeated_model(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return _model_of(item)
    return None


def parts(repeats: dict[str, int] | None = None) -> list[Part]:
    """The form's fieldsets in the model's order; a list of models is shown `repeats[name]`
    times (what was sent, plus one empty, optional repeat to add another)."""
    repeats = repeats or {}
    top: list[Question] = []
    nested: list[Part] = []
    for name, info in Questionnaire.model_fields.items():
        if (model := _model_of(info.annotation)) is not None:
            questions = tuple(_question(f"{name}.{n}", i) for n, i in model.model_fields.items())
            nested.append(Part(name, LEGENDS.get(name, _label(name)), questions))
        elif (model := _repeated_model(info.annotation)) is not None:
            count = min(max(repeats.get(name, 1), 1), MAX_REPEATS)
            for index in range(count + (1 if count < MAX_REPEATS else 0)):
                questions = tuple(_question(f"{name}.{index}.{n}", i) for n, i in model.model_fields.items())
                legend = f"{LEGENDS.get(name, _label(name))}: {_label(model.__name__)} {index + 1}"
                nested.append(Part(f"{name}.{index}", legend, questions, optional=index >= 1))
        else:
            top.append(_question(name, info))
    return [Part("", LEGENDS[""], tuple(top)), *nested]


def _questions(all_parts: list[Part]) -> Iterator[Question]:
    for part in all_parts:
        yield from part.questions


def _value(form: FormData, question: Question) -> Any:
    if question.widget == "checkboxes":
        return [v for v in form.getlist(question.name) if isinstance(v, str)]
    raw = text(form, question.name).strip()
    if question.widget == "codes":
        return [code for code in re.split(r"[,\s]+", raw) if code]
    return raw


def _set(answers: dict[str, Any], path: list[str], value: Any) -> None:
    head, *rest = path
    if not rest:
        answers[head] = value
        return
    if rest[0].isdigit():
        index, *tail = rest
        items = answers.setdefault(head, {})
        _set(items.setdefault(int(index), {}), tail, value)
        return
    _set(answers.setdefault(head, {}), rest, value)


def _listify(answers: dict[str, Any]) -> dict[str, Any]:
    """Repeats gathered by index become lists; a repeat left wholly empty (the optional one)
    is dropped, except the first, so a missing required answer is still reported."""
    out: dict[str, Any] = {}
    for key, value in answers.items():
        if isinstance(value, dict) and value and all(isinstance(k, int) for k in value):
            out[key] = [
                _listify(value[i]) for i in sorted(value) if i == 0 or any(v for v in value[i].values())
            ]
        elif isinstance(value, dict):
            out[key] = _listify(value)
        else:
            out[key] = value
    return out


def answers_of(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """(answers for the domain, what the person typed by input name to show again)."""
    repeats = _repeat_counts(form)
    answers: dict[str, Any] = {}
    typed: dict[str, Any] = {}
    for question in _questions(parts(repeats)):
        value = _value(form, question)
        typed[question.name] = value if question.widget == "checkboxes" else text(form, question.name)
        _set(answers, question.name.split("."), value)
    return _listify(answers), typed


def _repeat_counts(form: FormData) -> dict[str, int]:
    """How many repeats of each list the person filled in (so each one is shown again)."""
    counts: dict[str, int] = {}
    for key in form:
        match = re.fullmatch(r"([a-z_]+)\.(\d+)\.[a-z_]+", key)
        if match and int(match[2]) < MAX_REPEATS and text(form, key).strip():
            counts[match[1]] = max(counts.get(match[1], 1), int(match[2]) + 1)
    return counts


def place_problems(problems: dict[str, str], all_parts: list[Part]) -> tuple[dict[str, str], dict[str, str]]:
    """(problems by input name, problems by fieldset name): each problem goes to the input
    whose path is the longest prefix of the problem's path, else to its fieldset, else the form."""
    names = {q.name for q in _questions(all_parts)}
    fieldsets = {p.name: p.name for p in all_parts}
    # A problem with a whole list (`contacts`) goes to the fieldset of its first repeat.
    fieldsets.update({p.name.split(".")[0]: p.name for p in reversed(all_parts) if "." in p.name})
    by_input: dict[str, list[str]] = {}
    by_part: dict[str, list[str]] = {}
    for path, message in problems.items():
        message = message.removeprefix("Value error, ")
        segments = path.split(".")
        for end in range(len(segments), 0, -1):
            candidate = ".".join(segments[:end])
            if candidate in names:
                by_input.setdefault(candidate, []).append(message)
                break
            if candidate in fieldsets:
                by_part.setdefault(fieldsets[candidate], []).append(message)
                break
        else:
            by_part.setdefault("", []).append(message)
    return (
        {k: "; ".join(v) for k, v in by_input.items()},
        {k: "; ".join(v) for k, v in by_part.items()},
    )


def _open_application(me: Me) -> dict[str, Any] | None:
    for case in me.domain.manufacturers.visible_to(me.actor):
        if me.is_me(case["applicant"]) and case["stage"] != Stage.REJECTED.value:
            return case
    return None


def _form_page(
    me: Me,
    *,
    status: int = 200,
    typed: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    refused: str = "",
    repeats: dict[str, int] | None = None,
) -> Response:
    all_parts = parts(repeats)
    # In the summary, a question of a nested part is named with its part (`Contacts: Contact 1, Email`).
    labels = {
        q.name: (f"{p.legend}, {q.label}" if p.name else q.label) for p in all_parts for q in p.questions
    }
    by_input, by_part = place_problems(problems or {}, all_parts)
    summary = [(f"q-{name.replace('.', '-')}", labels[name], message) for name, message in by_input.items()]
    summary += [("", _part_legend(all_parts, name), message) for name, message in by_part.items()]
    return me.page(
        "manufacturer/apply.html",
        status=status,
        parts=all_parts,
        typed=typed or {},
        errors=by_input,
        part_errors=by_part,
        summary=summary,
        refused=refused,
        existing=_open_application(me),
    )


def _part_legend(all_parts: list[Part], name: str) -> str:
    return next((p.legend for p in all_parts if p.name == name), "The questionnaire")


@router.get("/apply", response_model=None)
def apply_page(request: Request, ctx: Context, who: Viewer) -> Response:
    me = acting(request, ctx, who)
    return me if not isinstance(me, Me) else _form_page(me)


@router.post("/apply", response_model=None)
async def apply(request: Request, ctx: Context, who: Viewer) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me
    form = await request.form()
    return await run_in_threadpool(_submit, me, form)


def _submit(me: Me, form: FormData) -> Response:
    answers, typed = answers_of(form)
    repeats = _repeat_counts(form)
    outcome = attempt(lambda: me.domain.manufacturers.submit_intake(me.actor, answers))
    if isinstance(outcome, QuestionnaireInvalid):
        return _form_page(me, status=422, typed=typed, problems=outcome.problems, repeats=repeats)
    if isinstance(outcome, DevicemintError):
        return _form_page(me, status=status_of(outcome), typed=typed, refused=str(outcome), repeats=repeats)
    return RedirectResponse(f"{PREFIX}/applications/{outcome}", status_code=303)
