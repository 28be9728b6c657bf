"""Factory batch files: every rule with its exact error, CSV and JSON Lines, streaming, uniqueness."""

from __future__ import annotations

import json
import tracemalloc
from datetime import date
from pathlib import Path

import pytest
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from devicemint.devices.batchfile import (
    FIELDS,
    BatchFileError,
    BatchValidator,
    FactoryRow,
    RawRow,
    RowError,
    detect_format,
    iter_rows,
    validate_row,
)
from devicemint.devices.proof import ProofDomain, address_of_private_key

from .rows import CONTRACT, DOMAIN, LICENCE, TODAY, device_key, imei, make_row, sign, write_csv, write_jsonl

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def check(raw, *, row_no: int = 7, today: date = TODAY, domain: ProofDomain = DOMAIN, licence: int = LICENCE):
    return validate_row(row_no, raw, domain=domain, device_licence_id=licence, today=today)


def only_error(raw, field: str, fragment: str, **kw) -> RowError:
    result = check(raw, **kw)
    assert isinstance(result, list), f"expected errors, got {result}"
    assert [e.field for e in result] == [field], [str(e) for e in result]
    (error,) = result
    assert fragment in error.reason, str(error)
    assert error.row == kw.get("row_no", 7)
    return error


# --------------------------------------------------------------------------- #
# A valid row
# --------------------------------------------------------------------------- #


def test_valid_row_becomes_a_typed_factory_row() -> None:
    raw = make_row(3)
    result = check(raw)
    assert isinstance(result, FactoryRow)
    assert result.row == 7
    assert result.serial_number == "DM-GW1-20240520-000003"
    assert result.imei == imei(3)
    assert result.device_address == address_of_private_key(device_key(3))
    assert result.manufacturing_date == date(2024, 5, 20)
    assert result.qa_inspection_date == date(2024, 5, 22)
    assert result.provisioning_date == date(2024, 5, 23)
    assert result.qa_passed is True
    assert result.ict_report_sha256 == (3).to_bytes(32, "big")
    assert result.firmware_sha256 == bytes.fromhex("cd" * 32)
    assert result.device_signature == bytes.fromhex(raw["device_signature"][2:])
    assert result.device_signature[64] in (27, 28)


def test_row_error_reads_like_a_sentence() -> None:
    assert str(RowError(7, "imei", "check digit is 3, expected 5 (Luhn)")) == (
        "row 7, field imei: check digit is 3, expected 5 (Luhn)"
    )
    assert str(RowError(4, "", "has 3 values, expected 15")) == "row 4: has 3 values, expected 15"


# --------------------------------------------------------------------------- #
# One rule at a time (each row is re-signed after the change, so only the rule fails)
# --------------------------------------------------------------------------- #


def test_imei_luhn_check_digit_says_what_would_be_right() -> None:
    good = imei(3)
    wrong = good[:14] + str((int(good[14]) + 1) % 10)
    error = only_error(
        make_row(3, imei=wrong), "imei", f"check digit is {wrong[14]}, expected {good[14]} (Luhn)"
    )
    assert str(error) == f"row 7, field imei: check digit is {wrong[14]}, expected {good[14]} (Luhn)"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("35693803564380", "has 14 digits; an IMEI has exactly 15"),
        ("3569380356438091", "has 16 digits"),
        ("35693803564380A", "contains U+0041 'A'; an IMEI is exactly 15 digits"),
        ("３５６９３８０３５６４３８０９", "contains U+FF13"),
        ("", "an IMEI is exactly 15 digits"),
    ],
)
def test_imei_shape(value: str, fragment: str) -> None:
    only_error(make_row(imei=value), "imei", fragment)


def test_address_checksum_mismatch_names_the_right_form() -> None:
    key = device_key(1)
    right = address_of_private_key(key)
    body = right[2:]
    # Flip the case of one letter: still mixed case, no longer the checksum.
    i = next(i for i, c in enumerate(body) if c.isalpha())
    wrong = "0x" + body[:i] + body[i].swapcase() + body[i + 1 :]
    error = only_error(make_row(1, device_address=wrong), "device_address", "EIP-55 checksum does not match")
    assert right in error.reason


@pytest.mark.parametrize("spelling", [str.lower, str.upper])
def test_all_lower_or_all_upper_addresses_are_accepted_and_checksummed(spelling) -> None:
    right = address_of_private_key(device_key(1))
    raw = make_row(1, device_address="0x" + spelling(right[2:]))
    result = check(raw)
    assert isinstance(result, FactoryRow), result
    assert result.device_address == right == to_checksum_address(right.lower())


@pytest.mark.parametrize(
    "value", ["0x1234", "1234567890123456789012345678901234567890", "0x" + "g" * 40, "0x" + "ab" * 21]
)
def test_address_shape(value: str) -> None:
    only_error(make_row(device_address=value), "device_address", "expected 0x followed by 40 hex digits")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("manufacturing_date", "2024-02-30"),
        ("manufacturing_date", "20240520"),
        ("qa_inspection_date", "2024-5-22"),
        ("provisioning_date", "23/05/2024"),
        ("provisioning_date", "2024-05-23T10:00:00"),
    ],
)
def test_dates_must_be_calendar_dates_written_yyyy_mm_dd(field: str, value: str) -> None:
    only_error(
        make_row(**{field: value}),
        field,
        f"{value!r} is not a valid date; expected a calendar date written YYYY-MM-DD",
    )


def test_qa_inspection_before_manufacturing() -> None:
    error = only_error(
        make_row(manufacturing_date="2024-05-21", qa_inspection_date="2024-05-20"),
        "qa_inspection_date",
        "2024-05-20 is before manufacturing_date 2024-05-21",
    )
    assert "the QA inspection must be on or after manufacturing" in error.reason


def test_provisioning_before_qa_inspection() -> None:
    only_error(
        make_row(provisioning_date="2024-05-21"),
        "provisioning_date",
        "2024-05-21 is before qa_inspection_date 2024-05-22; "
        "provisioning must be on or after the QA inspection",
    )


def test_provisioning_in_the_future() -> None:
    only_error(
        make_row(provisioning_date="2024-06-02"),
        "provisioning_date",
        "2024-06-02 is in the future (today is 2024-06-01); expected 2024-06-01 or earlier",
    )


def test_same_day_dates_and_today_are_fine() -> None:
    raw = make_row(
        manufacturing_date="2024-06-01", qa_inspection_date="2024-06-01", provisioning_date="2024-06-01"
    )
    assert isinstance(check(raw), FactoryRow)


def test_date_order_skips_an_unreadable_date_and_compares_the_rest() -> None:
    raw = make_row(qa_inspection_date="soon", provisioning_date="2024-05-19")
    result = check(raw)
    assert isinstance(result, list)
    assert {(e.field, e.reason.split(";")[0]) for e in result} == {
        ("qa_inspection_date", "'soon' is not a valid date"),
        ("provisioning_date", "2024-05-19 is before manufacturing_date 2024-05-20"),
    }


@pytest.mark.parametrize(
    ("field", "fragment"),
    [
        ("ict_result", "the device failed ICT; only devices that passed every test are certified"),
        ("mechanical_result", "the device failed the mechanical test"),
    ],
)
def test_failed_tests_are_refused(field: str, fragment: str) -> None:
    only_error(make_row(**{field: "fail"}), field, fragment)


def test_failed_qa_is_refused() -> None:
    only_error(make_row(qa_passed="false"), "qa_passed", "the device did not pass QA")


@pytest.mark.parametrize("value", ["PASS", "ok", "passed", ""])
def test_test_result_spelling(value: str) -> None:
    only_error(
        make_row(ict_result=value), "ict_result", f"{value!r} is not a test result; expected 'pass' or 'fail'"
    )


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1"])
def test_qa_passed_spellings_accepted_in_csv(value: str) -> None:
    assert isinstance(check(make_row(qa_passed=value)), FactoryRow)


@pytest.mark.parametrize("value", ["yes", "y", "2", ""])
def test_qa_passed_must_be_a_boolean(value: str) -> None:
    only_error(
        make_row(qa_passed=value),
        "qa_passed",
        f"{value!r} is not a boolean; expected true or false (or 1 or 0)",
    )


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ab" * 31 + "a", "has 63 hex digits, expected 64 (a SHA-256, optional 0x)"),
        ("ab" * 33, "has 66 hex digits, expected 64"),
        ("zz" * 32, "contains U+007A 'z'; expected 64 hex digits"),
    ],
)
def test_sha256_fields(value: str, fragment: str) -> None:
    for field in ("ict_report_sha256", "mechanical_report_sha256", "firmware_sha256"):
        only_error(make_row(**{field: value}), field, fragment)


def test_sha256_with_0x_and_upper_case_is_accepted() -> None:
    result = check(make_row(firmware_sha256="0x" + "CD" * 32))
    assert isinstance(result, FactoryRow)
    assert result.firmware_sha256 == bytes.fromhex("cd" * 32)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "is empty; expected 1 to 64 printable ASCII characters"),
        ("X" * 65, "is 65 characters long; at most 64 are allowed"),
        ("DM-é-1", "contains U+00E9 'é' at position 4; only printable ASCII"),
        ("DM\t1", "contains U+0009 at position 3"),
    ],
)
def test_serial_number(value: str, fragment: str) -> None:
    only_error(make_row(serial_number=value), "serial_number", fragment)


def test_serial_of_64_characters_with_inner_spaces_is_fine() -> None:
    assert isinstance(check(make_row(serial_number="A B" + "x" * 61)), FactoryRow)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("qa_inspector", "", "is empty; expected the name of the QA inspector"),
        ("firmware_version", "", "is empty; expected the initial firmware version"),
        ("firmware_version", "1.0\x002", "contains a control or invisible character (U+0000) at position 4"),
    ],
)
def test_free_text_fields(field: str, value: str, fragment: str) -> None:
    only_error(make_row(**{field: value}), field, fragment)


def test_surrounding_spaces_are_refused_not_silently_stripped() -> None:
    only_error(
        make_row(serial_number=" DM-1"),
        "serial_number",
        "has leading or trailing spaces (' DM-1'); remove them",
    )


# --------------------------------------------------------------------------- #
# The proof of possession
# --------------------------------------------------------------------------- #


def test_tampered_value_after_signing_is_refused() -> None:
    raw = make_row(1, after_signing={"firmware_version": "1.4.3"})
    error = only_error(raw, "device_signature", "expected the device_address")
    assert address_of_private_key(device_key(1)) in error.reason
    assert "chain id 31337" in error.reason and f"device licence {LICENCE}" in error.reason


def test_tampered_signature_is_refused() -> None:
    raw = make_row(1)
    sig = bytearray(bytes.fromhex(raw["device_signature"][2:]))
    sig[10] ^= 0x40
    raw["device_signature"] = "0x" + sig.hex()
    result = check(raw)
    assert isinstance(result, list) and [e.field for e in result] == ["device_signature"]


@pytest.mark.parametrize(
    ("domain", "licence"),
    [
        (ProofDomain(1, CONTRACT), LICENCE),  # wrong chain id
        (ProofDomain(31337, "0x" + "11" * 20), LICENCE),  # wrong contract
        (DOMAIN, LICENCE + 1),  # wrong device licence
    ],
)
def test_proof_for_another_chain_contract_or_licence_is_refused(domain: ProofDomain, licence: int) -> None:
    raw = make_row(1)
    only_error(raw, "device_signature", "is signed by 0x", domain=domain, licence=licence)


def test_signed_by_another_key_is_refused() -> None:
    raw = make_row(1)
    raw["device_signature"] = "0x" + sign(raw, device_key(2)).hex()
    error = only_error(raw, "device_signature", f"is signed by {address_of_private_key(device_key(2))}")
    assert f"expected the device_address {raw['device_address']}" in error.reason


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda sig: sig[:-2], "has 128 hex digits, expected 130"),
        (lambda sig: sig[:-2] + "1d", "signature v is 29, expected 27 or 28"),
        (lambda sig: "0x" + "zz" + sig[4:], "contains U+007A 'z'"),
    ],
)
def test_malformed_signature(mutate, fragment: str) -> None:
    raw = make_row(1)
    raw["device_signature"] = mutate(raw["device_signature"])
    only_error(raw, "device_signature", fragment)


def test_high_s_signature_is_refused() -> None:
    raw = make_row(1)
    sig = bytes.fromhex(raw["device_signature"][2:])
    s = SECP256K1_N - int.from_bytes(sig[32:64], "big")
    raw["device_signature"] = "0x" + (sig[:32] + s.to_bytes(32, "big") + bytes((55 - sig[64],))).hex()
    only_error(raw, "device_signature", "low-s form (EIP-2)")


def test_v_0_or_1_is_accepted_and_normalised() -> None:
    raw = make_row(1)
    sig = bytes.fromhex(raw["device_signature"][2:])
    raw["device_signature"] = "0x" + (sig[:64] + bytes((sig[64] - 27,))).hex()
    result = check(raw)
    assert isinstance(result, FactoryRow)
    assert result.device_signature == sig


# --------------------------------------------------------------------------- #
# Several problems at once, missing and unknown fields, JSON types
# --------------------------------------------------------------------------- #


def test_every_error_of_a_row_is_reported() -> None:
    raw = make_row(
        1,
        imei="35693803564380",
        ict_result="fail",
        qa_passed="no",
        provisioning_date="2030-01-01",
        firmware_sha256="00",
        device_signature="0x00",
    )
    result = check(raw)
    assert isinstance(result, list)
    assert [e.field for e in result] == [
        "imei",
        "provisioning_date",
        "ict_result",
        "qa_passed",
        "firmware_sha256",
        "device_signature",
    ]
    assert all(e.row == 7 for e in result)


def test_missing_and_unknown_fields_in_json_lines() -> None:
    raw = make_row(1)
    del raw["imei"]
    raw["imie"] = "356938035643809"
    raw["colour"] = "red"
    result = check(RawRow(raw))
    assert isinstance(result, list)
    by_field = {e.field: e.reason for e in result}
    assert by_field["imie"] == "unknown field (did you mean imei?)"
    assert by_field["colour"].startswith("unknown field (expected only: serial_number, imei, ")
    assert by_field["imei"] == "is missing"
    assert set(by_field) == {"imie", "colour", "imei"}


def test_json_types() -> None:
    raw: dict = make_row(1)
    raw["qa_passed"] = True  # a JSON boolean is fine
    assert isinstance(check(raw), FactoryRow)
    raw["imei"] = 356938035643809
    raw["serial_number"] = None
    result = check(raw)
    assert isinstance(result, list)
    assert {(e.field, e.reason) for e in result} == {
        ("imei", "must be a JSON string, found int 356938035643809; quote the value"),
        ("serial_number", "must be a JSON string, found null null; quote the value"),
    }


def test_raw_row_problem_is_reported_alone() -> None:
    raw = RawRow()
    raw.problem = "has 3 values, expected 15 (one per header column)"
    assert check(raw, row_no=4) == [RowError(4, "", "has 3 values, expected 15 (one per header column)")]


# --------------------------------------------------------------------------- #
# Reading CSV and JSON Lines
# --------------------------------------------------------------------------- #


def test_csv_row_numbers_are_editor_line_numbers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "batch.csv", [make_row(1), make_row(2)])
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    # A blank line between the two devices, and a blank line at the end.
    path.write_text(lines[0] + lines[1] + "\n" + lines[2] + "\n")
    assert [n for n, _ in iter_rows(path)] == [2, 4]


def test_csv_with_bom_crlf_quoted_commas_and_any_column_order(tmp_path: Path) -> None:
    row = make_row(1, qa_inspector="Smith, Jane")
    header = list(reversed(FIELDS))
    path = tmp_path / "batch.csv"
    body = write_csv(tmp_path / "tmp.csv", [row], header=header).read_text()
    path.write_bytes(b"\xef\xbb\xbf" + body.replace("\n", "\r\n").encode())
    ((row_no, raw),) = list(iter_rows(path))
    assert row_no == 2
    assert raw == row
    assert isinstance(check(raw), FactoryRow)


def test_csv_wrong_number_of_values(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "batch.csv", [make_row(1)])
    path.write_text(path.read_text() + "a,b,c\n")
    results = list(BatchValidator(path, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY))
    assert isinstance(results[0], FactoryRow)
    assert results[1] == [
        RowError(
            3,
            "",
            "has 3 values, expected 15 (one per header column); a value containing a comma must be quoted",
        )
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            [f for f in FIELDS if f != "imei"],
            [RowError(1, "imei", "missing column in the header")],
        ),
        (
            [("imie" if f == "imei" else f) for f in FIELDS],
            [
                RowError(1, "imie", "unknown column (did you mean imei?)"),
                RowError(1, "imei", "missing column in the header"),
            ],
        ),
        (
            [*FIELDS, "serial_number"],
            [RowError(1, "serial_number", "column appears more than once in the header")],
        ),
    ],
)
def test_csv_header_problems_name_the_column(tmp_path: Path, header, expected) -> None:
    path = write_csv(tmp_path / "batch.csv", [make_row(1)], header=header)
    with pytest.raises(BatchFileError) as excinfo:
        list(iter_rows(path))
    assert excinfo.value.errors == expected
    assert expected[0].field in str(excinfo.value)
    # The validator reports them as one result on the header row, then stops.
    validator = BatchValidator(path, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY)
    assert list(validator) == [expected]
    assert (validator.rows, validator.valid, validator.invalid) == (1, 0, 1)


def test_semicolon_separated_file_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    path.write_text(";".join(FIELDS) + "\n")
    with pytest.raises(BatchFileError) as excinfo:
        list(iter_rows(path))
    assert excinfo.value.errors == [
        RowError(
            1, "", "the header is separated by semicolons; a batch CSV file separates columns with commas"
        )
    ]


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="0123456789", min_size=14, max_size=14), st.integers(0, 9))
def test_property_imei_accepted_iff_luhn_valid(payload: str, check_digit: int) -> None:
    value = payload + str(check_digit)
    total = sum(
        (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
        for i, d in enumerate(int(c) for c in reversed(value))
    )
    result = check(make_row(1, imei=value))
    if total % 10 == 0:
        assert isinstance(result, FactoryRow), result
    else:
        assert isinstance(result, list) and [e.field for e in result] == ["imei"]
        assert result[0].reason.startswith(f"check digit is {check_digit}, expected ")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    path.write_text("\n\n")
    with pytest.raises(BatchFileError, match="the file is empty; expected a header row"):
        list(iter_rows(path))


def test_missing_file_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(BatchFileError, match="no such file"):
        list(iter_rows(tmp_path / "nope.csv"))
    path = write_csv(tmp_path / "batch.csv", [make_row(1)])
    path.write_bytes(path.read_bytes() + b"\xff\xfe,\n")
    with pytest.raises(BatchFileError, match="not UTF-8 text"):
        list(iter_rows(path))


def test_jsonl_rows_and_problems(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    good = make_row(1)
    path.write_text(
        json.dumps(good)
        + "\n"
        + "\n"
        + "{not json\n"
        + "[1, 2]\n"
        + '{"serial_number": "a", "serial_number": "b"}\n'
        + json.dumps(make_row(2))
        + "\n"
    )
    results = list(BatchValidator(path, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY))
    assert isinstance(results[0], FactoryRow) and results[0].row == 1
    assert results[1][0].row == 3 and "not valid JSON" in results[1][0].reason
    assert results[2] == [RowError(4, "", "is a JSON list, expected an object with the device's fields")]
    assert results[3][0].row == 5 and "field 'serial_number' appears twice" in results[3][0].reason
    assert isinstance(results[4], FactoryRow) and results[4].row == 6


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("b.csv", "{", "csv"),
        ("b.jsonl", "serial", "jsonl"),
        ("b.ndjson", "", "jsonl"),
        ("b.txt", '\n  {"serial_number": 1}', "jsonl"),
        ("b", "serial_number,imei", "csv"),
        ("b.dat", "", "csv"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert detect_format(path) == expected


def test_csv_and_jsonl_give_the_same_rows(tmp_path: Path) -> None:
    rows = [make_row(n) for n in range(1, 6)]
    from_csv = [r for _, r in iter_rows(write_csv(tmp_path / "b.csv", rows))]
    from_jsonl = [r for _, r in iter_rows(write_jsonl(tmp_path / "b.jsonl", rows))]
    assert from_csv == from_jsonl == rows


# --------------------------------------------------------------------------- #
# Uniqueness within the file, the `known` hook, counts
# --------------------------------------------------------------------------- #


def test_duplicates_within_the_file_name_the_first_row(tmp_path: Path) -> None:
    first = make_row(1)
    same_serial = make_row(2, serial_number=first["serial_number"])
    same_imei = make_row(3, imei=first["imei"])
    same_address = make_row(1, serial_number="DM-OTHER-1", imei=imei(99))
    same_address["device_address"] = same_address["device_address"].lower()  # case does not hide it
    path = write_csv(tmp_path / "b.csv", [first, same_serial, same_imei, same_address])
    validator = BatchValidator(path, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY)
    results = list(validator)
    assert isinstance(results[0], FactoryRow)
    assert results[1] == [
        RowError(
            3,
            "serial_number",
            f"{first['serial_number']} is also on row 2; each device appears once per file",
        )
    ]
    assert results[2] == [
        RowError(4, "imei", f"{first['imei']} is also on row 2; each device appears once per file")
    ]
    assert results[3] == [
        RowError(
            5,
            "device_address",
            f"{first['device_address']} is also on row 2; each device appears once per file",
        )
    ]
    assert (validator.rows, validator.valid, validator.invalid, validator.errors) == (4, 1, 3, 3)


def test_a_duplicate_of_an_invalid_row_is_still_a_duplicate() -> None:
    first = make_row(1, ict_result="fail")
    second = make_row(2, serial_number=first["serial_number"])
    results = list(
        BatchValidator([(2, first), (3, second)], domain=DOMAIN, device_licence_id=LICENCE, today=TODAY)
    )
    assert [e.field for e in results[0]] == ["ict_result"]
    assert [e.field for e in results[1]] == ["serial_number"]


def test_known_hook_is_called_per_chunk_and_its_conflicts_are_merged() -> None:
    rows = [(n + 1, make_row(n)) for n in range(1, 8)]
    calls = []
    taken_imei = rows[2][1]["imei"]

    def known(serials, imeis, addresses):
        calls.append((dict(serials), dict(imeis), dict(addresses)))
        conflicts = set()
        if taken_imei in imeis:
            conflicts.add((imeis[taken_imei], "imei", f"{taken_imei} is already registered (batch 4)"))
        return conflicts

    validator = BatchValidator(
        rows, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY, known=known, chunk_size=3
    )
    results = list(validator)
    assert [len(c[0]) for c in calls] == [3, 3, 1]
    serials, imeis, addresses = calls[0]
    assert serials == {rows[i][1]["serial_number"]: rows[i][0] for i in range(3)}
    assert addresses == {rows[i][1]["device_address"]: rows[i][0] for i in range(3)}
    assert [r.row if isinstance(r, FactoryRow) else r[0].row for r in results] == [n for n, _ in rows]
    assert results[2] == [RowError(4, "imei", f"{taken_imei} is already registered (batch 4)")]
    assert validator.valid == 6 and validator.invalid == 1


def test_validator_refuses_a_bad_licence_id() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        BatchValidator([], domain=DOMAIN, device_licence_id=0, today=TODAY)


# --------------------------------------------------------------------------- #
# Streaming: memory does not grow with the rows
# --------------------------------------------------------------------------- #


def _big_csv(path: Path, count: int) -> Path:
    template = make_row(1)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(",".join(FIELDS) + "\n")
        for n in range(count):
            row = dict(template, serial_number=f"DM-GW1-20240520-{n:06d}", imei=imei(n))
            handle.write(",".join(row[f] for f in FIELDS) + "\n")
    return path


def test_reading_20000_rows_streams(tmp_path: Path) -> None:
    path = _big_csv(tmp_path / "big.csv", 20_000)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_rows(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert size > 8_000_000
    assert peak < 256 * 1024, f"reading used {peak} bytes at peak for a {size}-byte file"


def test_validating_20000_rows_keeps_only_keys(tmp_path: Path) -> None:
    path = _big_csv(tmp_path / "big.csv", 20_000)
    size = path.stat().st_size
    validator = BatchValidator(path, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY)
    tracemalloc.start()
    try:
        invalid = 0
        for result in validator:
            invalid += isinstance(result, list)  # every row: signature no longer matches, same address
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert validator.rows == 20_000 and validator.valid == 0 and invalid == 20_000
    # Keys only: a few hundred bytes per row at most, well below the file (and far below the rows).
    assert peak < 300 * 20_000, f"validating used {peak} bytes at peak for a {size}-byte file"
