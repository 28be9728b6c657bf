"""The answer each domain error gets over HTTP, for the API's JSON and the portal's pages alike."""

from __future__ import annotations

from devicemint.auth.errors import MalformedSignIn, PermissionRefused, SignInRefused
from devicemint.chain.tx import TransactionReverted
from devicemint.devices.intake import IntakeRejected
from devicemint.errors import ChainError, DevicemintError, NotFound, UsageError
from devicemint.onboarding.cases import NotPermitted, TransitionRefused
from devicemint.onboarding.checklist import ChecklistIncomplete
from devicemint.onboarding.evidence import EvidenceError
from devicemint.onboarding.questionnaire import QuestionnaireInvalid
from devicemint.pki.errors import NoFoundationRoot, PkiError

# Devicemint errors that reach the API, by the answer they get; the first matching class wins.
DOMAIN_ERRORS: tuple[tuple[type[DevicemintError], int, str], ...] = (
    (MalformedSignIn, 422, "invalid_request"),
    (SignInRefused, 401, "sign_in_refused"),
    (PermissionRefused, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (NotPermitted, 403, "forbidden"),
    (TransitionRefused, 409, "refused"),
    (IntakeRejected, 422, "invalid_batch"),
    (UsageError, 422, "invalid_request"),
    (QuestionnaireInvalid, 422, "invalid_request"),
    (ChecklistIncomplete, 422, "invalid_request"),
    (EvidenceError, 422, "invalid_evidence"),
    (NoFoundationRoot, 409, "refused"),
    (PkiError, 422, "invalid_request"),
    # The chain answered: the contract refused (a rule, not an outage).
    (TransactionReverted, 409, "refused_by_contract"),
    (ChainError, 503, "chain_unavailable"),
)


def answer_for(exc: DevicemintError) -> tuple[int, str]:
    """The HTTP status and error code of a domain refusal (400 "refused" for any other)."""
    for cls, status, code in DOMAIN_ERRORS:
        if isinstance(exc, cls):
            return status, code
    return 400, "refused"
