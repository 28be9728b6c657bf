"""The design dossier's hash and diff, certification dates and the CX rubric."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from devicemint.onboarding.design import (
    CertificationIn,
    CxAssessmentIn,
    CxVideo,
    DesignSubmission,
    DossierFile,
    DossierRole,
    design_hash,
    dossier_diff,
    load_cx_rubric,
    score_cx,
)

FILES = [
    DossierFile(name="schematics.pdf", role=DossierRole.SCHEMATIC, sha256="11" * 32),
    DossierFile(name="bom.csv", role=DossierRole.BOM, sha256="22" * 32),
    DossierFile(name="fw.bin", role=DossierRole.FIRMWARE, sha256="33" * 32),
]


def test_the_design_hash_is_independent_of_file_order_and_changes_with_any_file() -> None:
    base = design_hash("NL-1", "rev-A", FILES)
    assert design_hash("NL-1", "rev-A", list(reversed(FILES))) == base
    assert design_hash("NL-1", "rev-B", FILES) != base
    changed = [*FILES[:2], FILES[2].model_copy(update={"sha256": "34" * 32})]
    assert design_hash("NL-1", "rev-A", changed) != base
    renamed = [*FILES[:2], FILES[2].model_copy(update={"name": "fw2.bin"})]
    assert design_hash("NL-1", "rev-A", renamed) != base


@given(
    st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True),
)
def test_the_diff_accounts_for_every_file(old_names: list[str], new_names: list[str]) -> None:
    old = [{"name": n, "role": "document", "sha256": "00" * 32} for n in old_names]
    new = [{"name": n, "role": "document", "sha256": ("00" if n < "c" else "ff") * 32} for n in new_names]
    diff = dossier_diff(old, new)
    seen = [f["name"] for f in diff.added + diff.removed + diff.changed] + diff.unchanged
    assert sorted(seen) == sorted(set(old_names) | set(new_names))
    assert {c["name"] for c in diff.changed} == {n for n in set(old_names) & set(new_names) if n >= "c"}


def test_a_dossier_needs_unique_names_and_the_required_roles() -> None:
    with pytest.raises(ValidationError, match="repeated: bom.csv"):
        DesignSubmission(
            model="M",
            revision="r",
            files=[*FILES, FILES[1].model_copy(update={"role": DossierRole.DOCUMENT})],
        )
    with pytest.raises(ValidationError, match="lacks a bom and a firmware file"):
        DesignSubmission(model="M", revision="r", files=FILES[:1])
    with pytest.raises(ValidationError, match="pattern"):
        DossierFile(name="../etc/passwd", role=DossierRole.DOCUMENT, sha256="11" * 32)


def test_a_certification_expires_after_it_is_issued() -> None:
    with pytest.raises(ValidationError, match="expires_on 2026-01-01 must be after issued_on 2026-06-01"):
        CertificationIn(
            scheme="FCC",
            identifier="X",
            issued_on=date(2026, 6, 1),
            expires_on=date(2026, 1, 1),
            document_sha256="11" * 32,
        )
    with pytest.raises(ValidationError, match="scheme"):
        CertificationIn(scheme="XYZ", identifier="X", issued_on=date(2026, 6, 1), document_sha256="11" * 32)


def test_the_cx_rubric_needs_every_step_and_criterion_and_a_low_score_fails() -> None:
    rubric = load_cx_rubric()
    videos = [CxVideo(step=s, sha256="44" * 32) for s in rubric.steps]
    scores = {c.id: 5 for c in rubric.criteria}
    assert score_cx(rubric, CxAssessmentIn(videos=videos, scores=scores, report_sha256="55" * 32)) == (
        True,
        [],
    )
    low = {**scores, "pairing": 3}  # pairing needs 4
    assert score_cx(rubric, CxAssessmentIn(videos=videos, scores=low, report_sha256="55" * 32)) == (False, [])
    partial = CxAssessmentIn(
        videos=videos[1:] + [CxVideo(step="teardown", sha256="44" * 32)],
        scores={**{k: v for k, v in scores.items() if k != "support"}, "speed": 9},
        report_sha256="55" * 32,
    )
    _, problems = score_cx(rubric, partial)
    assert problems == [
        "no video of the unboxing step",
        "video step 'teardown' is not on the rubric",
        "criterion support is not scored",
        "criterion 'speed' is not on the rubric",
        "criterion speed has score 9; scores are 0 to 5",
    ]
