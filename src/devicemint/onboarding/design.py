"""Hardware designs: the design dossier, its `design_hash`, certifications, audits' inputs.

Pydantic models so the API takes exactly these as request bodies and every wrong field is
reported with its path.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Annotated, Any

import rfc8785
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from devicemint.onboarding.checklist import Mark
from devicemint.onboarding.evidence import EvidenceKind

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, 64 lowercase hex digits")]
DESIGN_SCHEMA = "devicemint/design/v1"


class DossierRole(StrEnum):
    """What a dossier file is; the evidence uploaded for it must be of the matching kind."""

    SCHEMATIC = "schematic"
    BOM = "bom"
    FIRMWARE = "firmware"
    DOCUMENT = "document"
    ARCHIVE = "archive"

    @property
    def evidence_kind(self) -> EvidenceKind:
        return EvidenceKind(self.value)


#: A dossier without these is not a design anyone can audit.
REQUIRED_ROLES = (DossierRole.SCHEMATIC, DossierRole.BOM, DossierRole.FIRMWARE)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DossierFile(_Input):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^/\\]+$", description="file name, no path")
    role: DossierRole
    sha256: Sha256


def _complete(files: list[DossierFile]) -> list[DossierFile]:
    """The rules of every dossier, first submitted or replaced in a remediation."""
    names = [f.name for f in files]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"file names must be unique in a dossier; repeated: {', '.join(repeated)}")
    missing = [r.value for r in REQUIRED_ROLES if r not in {f.role for f in files}]
    if missing:
        raise ValueError(f"the dossier lacks a {' and a '.join(missing)} file")
    return files


Dossier = Annotated[list[DossierFile], Field(min_length=1, max_length=500), AfterValidator(_complete)]


class DesignSubmission(_Input):
    """A device application's opening: the design and, for a design change, the licence it changes."""

    model: str = Field(min_length=1, max_length=100)
    revision: str = Field(min_length=1, max_length=100)
    files: Dossier
    supersedes_licence_id: int | None = Field(default=None, ge=1)


def design_hash(model: str, revision: str, files: list[DossierFile]) -> str:
    """SHA-256 of the canonical (RFC 8785) description of the design: model, revision and every
    dossier file by name, role and content hash. Any change to any file changes the hash."""
    document: dict[str, Any] = {
        "schema": DESIGN_SCHEMA,
        "model": model,
        "revision": revision,
        "files": [f.model_dump(mode="json") for f in sorted(files, key=lambda f: f.name)],
    }
    return hashlib.sha256(rfc8785.dumps(document)).hexdigest()


@dataclass(frozen=True)
class DossierDiff:
    added: list[dict[str, str]]
    removed: list[dict[str, str]]
    changed: list[dict[str, str]]
    unchanged: list[str]


def dossier_diff(old: list[dict[str, str]], new: list[dict[str, str]]) -> DossierDiff:
    """What a design change changes, file by file (by name)."""
    before = {f["name"]: f for f in old}
    after = {f["name"]: f for f in new}
    return DossierDiff(
        added=[after[n] for n in sorted(after.keys() - before.keys())],
        removed=[before[n] for n in sorted(before.keys() - after.keys())],
        changed=[
            {"name": n, "role": after[n]["role"], "from": before[n]["sha256"], "to": after[n]["sha256"]}
            for n in sorted(before.keys() & after.keys())
            if before[n] != after[n]
        ],
        unchanged=sorted(n for n in before.keys() & after.keys() if before[n] == after[n]),
    )


class CertificationScheme(StrEnum):
    FCC = "FCC"
    CE = "CE"
    ISED = "ISED"
    UKCA = "UKCA"
    PTCRB = "PTCRB"
    GCF = "GCF"
    RCM = "RCM"
    TELEC = "TELEC"
    ANATEL = "ANATEL"


class CertificationIn(_Input):
    scheme: CertificationScheme
    identifier: str = Field(min_length=1, max_length=100, description="e.g. the FCC ID 2AB3C-AT4G")
    issued_on: date
    expires_on: date | None = None
    document_sha256: Sha256

    @field_validator("expires_on")
    @classmethod
    def _after_issue(cls, expires_on: date | None, info: Any) -> date | None:
        issued = info.data.get("issued_on")
        if expires_on is not None and issued is not None and expires_on <= issued:
            raise ValueError(f"expires_on {expires_on} must be after issued_on {issued}")
        return expires_on


class ChecklistMarkIn(_Input):
    item_id: str = Field(min_length=1, max_length=100)
    mark: Mark
    evidence: list[Sha256] = Field(default_factory=list, max_length=50)
    note: str = Field(default="", max_length=2000)


class HardwareAuditIn(_Input):
    """An auditor's Hardware & Security Audit: every checklist item marked, and the report."""

    items: list[ChecklistMarkIn] = Field(max_length=500)
    report_sha256: Sha256
    summary: str = Field(default="", max_length=5000)


class CxVideo(_Input):
    step: str = Field(min_length=1, max_length=50, description="a step of the CX rubric, e.g. unboxing")
    sha256: Sha256


class CxAssessmentIn(_Input):
    """A CX auditor's assessment: a video of every step from unboxing to onboarding, a score for
    every rubric criterion, and the report."""

    videos: list[CxVideo] = Field(max_length=50)
    scores: dict[str, int] = Field(description="criterion id -> score 0..5")
    report_sha256: Sha256
    summary: str = Field(default="", max_length=5000)


class RemediationIn(_Input):
    """The manufacturer's answer to a failed audit; `files` replaces the dossier (a new design
    hash), which sends the design back to the hardware & security audit."""

    note: str = Field(min_length=1, max_length=5000)
    evidence: list[Sha256] = Field(min_length=1, max_length=50)
    files: Dossier | None = None


@dataclass(frozen=True)
class CxCriterion:
    id: str
    title: str
    min_score: int


@dataclass(frozen=True)
class CxRubric:
    version: int
    steps: tuple[str, ...]
    criteria: tuple[CxCriterion, ...]


@cache
def load_cx_rubric(version: int = 1) -> CxRubric:
    raw = json.loads(
        (resources.files("devicemint.onboarding") / "checklists" / f"cx-rubric-v{version}.json").read_text(
            "utf-8"
        )
    )
    return CxRubric(
        version=raw["version"],
        steps=tuple(raw["steps"]),
        criteria=tuple(CxCriterion(c["id"], c["title"], c["min_score"]) for c in raw["criteria"]),
    )


def score_cx(rubric: CxRubric, assessment: CxAssessmentIn) -> tuple[bool, list[str]]:
    """(passed, problems): problems make the assessment incomplete; a low score fails it."""
    problems = [
        f"no video of the {s} step" for s in rubric.steps if s not in {v.step for v in assessment.videos}
    ]
    problems += [
        f"video step {v.step!r} is not on the rubric" for v in assessment.videos if v.step not in rubric.steps
    ]
    criteria = {c.id: c for c in rubric.criteria}
    problems += [f"criterion {c} is not scored" for c in criteria if c not in assessment.scores]
    problems += [f"criterion {c!r} is not on the rubric" for c in assessment.scores if c not in criteria]
    problems += [
        f"criterion {c} has score {s}; scores are 0 to 5"
        for c, s in assessment.scores.items()
        if not 0 <= s <= 5
    ]
    passed = all(assessment.scores.get(c.id, 0) >= c.min_score for c in rubric.criteria)
    return passed, problems
