"""The Hardware & Security Audit checklist: a versioned template shipped with the package, and
the rule that an audit marks every item pass, fail or n.a. with evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

from devicemint.errors import DevicemintError, NotFound

CURRENT_VERSION = 1


class Mark(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "n.a."


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    section: str
    title: str


@dataclass(frozen=True)
class Checklist:
    id: str
    version: int
    title: str
    items: tuple[ChecklistItem, ...]

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)


@dataclass(frozen=True)
class ItemResult:
    item_id: str
    mark: Mark
    evidence_sha256: tuple[str, ...]
    note: str = ""


class ChecklistIncomplete(DevicemintError):
    exit_code = 2


@cache
def load_checklist(version: int = CURRENT_VERSION) -> Checklist:
    name = f"hardware-security-v{version}.json"
    try:
        raw = json.loads((resources.files("devicemint.onboarding") / "checklists" / name).read_text("utf-8"))
    except FileNotFoundError as exc:
        raise NotFound(f"no Hardware & Security Audit checklist version {version}") from exc
    items = tuple(ChecklistItem(i["id"], i["section"], i["title"]) for i in raw["items"])
    return Checklist(raw["id"], raw["version"], raw["title"], items)


def check_results(checklist: Checklist, results: list[ItemResult]) -> bool:
    """Whether the audit passes; refuses an incomplete or unsupported report, naming each gap."""
    by_item = {r.item_id: r for r in results}
    problems = [f"item {item_id} is not marked" for item_id in checklist.item_ids if item_id not in by_item]
    problems += [
        f"item {r.item_id} is not on checklist v{checklist.version}"
        for r in results
        if r.item_id not in checklist.item_ids
    ]
    problems += [
        f"item {r.item_id} is marked {r.mark.value} without evidence"
        for r in results
        if r.mark is not Mark.NOT_APPLICABLE and not r.evidence_sha256
    ]
    problems += [
        f"item {r.item_id} is n.a. without a note saying why"
        for r in results
        if r.mark is Mark.NOT_APPLICABLE and not r.note.strip()
    ]
    if problems:
        raise ChecklistIncomplete("the audit report is incomplete: " + "; ".join(problems))
    return all(r.mark is not Mark.FAIL for r in results)
