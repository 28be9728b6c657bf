"""The intake questionnaire: who the manufacturer is and what device it intends to launch.

Validated with pydantic so every wrong answer is reported at once with its field path, in
words the applicant can act on.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator

from devicemint.errors import DevicemintError

ISO_COUNTRY = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, e.g. DE")]


class Connectivity(StrEnum):
    LTE_M = "lte-m"
    NB_IOT = "nb-iot"
    LTE = "lte"
    FIVE_G = "5g"
    WIFI = "wifi"
    BLUETOOTH = "bluetooth"
    LORA = "lora"


class DeviceType(StrEnum):
    OBD_DONGLE = "obd-dongle"
    TELEMATICS_UNIT = "telematics-unit"
    DASHCAM = "dashcam"
    SENSOR = "sensor"
    GATEWAY = "gateway"
    OTHER = "other"


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    email: EmailStr
    role: str = Field(min_length=1, max_length=80)


class IntendedDevice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    type: DeviceType
    connectivity: list[Connectivity] = Field(min_length=1)
    # The programme requires a per-device EVM key in a secure element; say which one.
    secure_element: str = Field(min_length=1, max_length=120)
    target_markets: list[ISO_COUNTRY] = Field(min_length=1)
    expected_units_first_year: int = Field(gt=0, le=100_000_000)


class Questionnaire(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company_name: str = Field(min_length=2, max_length=200)
    legal_entity_id: str = Field(min_length=1, max_length=64, description="registry or LEI number")
    jurisdiction: ISO_COUNTRY
    website: str = Field(pattern=r"^https://[^\s]+$", max_length=300)
    contacts: list[Contact] = Field(min_length=1, max_length=10)
    device: IntendedDevice

    @field_validator("contacts")
    @classmethod
    def _distinct_emails(cls, contacts: list[Contact]) -> list[Contact]:
        emails = [c.email.lower() for c in contacts]
        if len(set(emails)) != len(emails):
            raise ValueError("each contact needs their own email address")
        return contacts


class QuestionnaireInvalid(DevicemintError):
    """The answers have problems; `problems` maps each field path to what is wrong."""

    exit_code = 2

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        listed = "; ".join(f"{path}: {reason}" for path, reason in problems.items())
        super().__init__(f"the questionnaire has {len(problems)} problem(s): {listed}")


# What a pattern-checked answer should look like, by field name, for the error message.
_EXPECTED = {
    "jurisdiction": "an ISO 3166-1 alpha-2 country code in capitals, such as DE",
    "target_markets": "ISO 3166-1 alpha-2 country codes in capitals, such as DE or US",
    "website": "an https:// address",
}


def _message(error: dict) -> str:
    if error["type"] == "string_pattern_mismatch":
        field = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str)), "")
        return f"{error['input']!r} is not {_EXPECTED.get(field, 'in the expected format')}"
    return str(error["msg"])


def parse_questionnaire(answers: object) -> Questionnaire:
    """Validate the answers, reporting every problem with the path of its field."""
    try:
        return Questionnaire.model_validate(answers)
    except ValidationError as exc:
        problems = {
            ".".join(str(part) for part in error["loc"]) or "(answers)": _message(dict(error))
            for error in exc.errors()
        }
        raise QuestionnaireInvalid(problems) from exc
