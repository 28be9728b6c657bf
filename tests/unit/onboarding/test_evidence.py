"""The evidence store on real files: type by content, size limits, atomic writes, verification."""

from __future__ import annotations

import gzip
import hashlib
import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from devicemint.errors import DevicemintError, NotFound
from devicemint.onboarding.evidence import (
    BLOCK_SIZE,
    DEFAULT_POLICIES,
    EvidenceCorrupted,
    EvidenceError,
    EvidenceKind,
    EvidenceNotFound,
    EvidenceStore,
    LocalEvidenceStore,
    MiB,
    StoredEvidence,
)

# -- real files, minimal but valid enough for magic-byte detection -------------------------


def pdf(body: bytes = b"") -> bytes:
    return (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        + body
        + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    return (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32 + b"\xff\xd9"
    )


def mp4(payload: int = 64) -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isomiso2"
    mdat = struct.pack(">I", 8 + payload) + b"mdat" + bytes(range(payload))
    return ftyp + mdat


def webm() -> bytes:
    doctype = b"\x42\x82\x84webm"
    header = b"\x42\x86\x81\x01" + b"\x42\xf7\x81\x01" + b"\x42\xf2\x81\x04" + b"\x42\xf3\x81\x08" + doctype
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(header)]) + header + b"\x18\x53\x80\x67\x80"


def zip_of(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(name, f"<x>{name}</x>")
    return buf.getvalue()


def xlsx() -> bytes:
    return zip_of(["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/worksheets/sheet1.xml"])


def csv() -> bytes:
    return "\ufeffreference,part,quantity\nR1,Widerstand 10 kΩ,2\nU1,nRF52840,1\n".encode()


def elf() -> bytes:
    return b"\x7fELF\x01\x01\x01" + b"\x00" * 9 + struct.pack("<HHI", 2, 40, 1) + b"\x00" * 64


def raw_firmware() -> bytes:
    # An ARM vector table: initial stack pointer and reset vector, then code: no signature.
    return struct.pack("<II", 0x20040000, 0x00000101) + bytes(range(256)) * 4


def intel_hex() -> bytes:
    return b":100000000000042001010000A1010000A3010000E0\n:00000001FF\n"


VALID: dict[EvidenceKind, list[tuple[str, bytes, str]]] = {
    EvidenceKind.MOU: [("mou-signed.pdf", pdf(), "application/pdf")],
    EvidenceKind.AUDIT_REPORT: [("hw-security-audit.pdf", pdf(b"% report\n"), "application/pdf")],
    EvidenceKind.CX_VIDEO: [("cx.mp4", mp4(), "video/mp4"), ("cx.webm", webm(), "video/webm")],
    EvidenceKind.CERTIFICATION: [
        ("fcc-grant.pdf", pdf(b"% FCC\n"), "application/pdf"),
        ("ce-declaration.png", png(), "image/png"),
        ("ptcrb.jpg", jpeg(), "image/jpeg"),
    ],
    EvidenceKind.SCHEMATIC: [("mainboard-rev-b.pdf", pdf(b"% schematic\n"), "application/pdf")],
    EvidenceKind.BOM: [
        ("bom.csv", csv(), "text/plain"),
        ("bom.xlsx", xlsx(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ],
    EvidenceKind.FIRMWARE: [
        ("fw-1.0.0.bin", raw_firmware(), "application/octet-stream"),
        ("fw-1.0.0.elf", elf(), "application/x-executable"),
        ("fw-1.0.0.hex", intel_hex(), "text/plain"),
        ("dfu-1.0.0.zip", zip_of(["manifest.json", "app.bin"]), "application/zip"),
    ],
    EvidenceKind.ARCHIVE: [
        ("dossier.zip", zip_of(["README.txt", "gerbers/top.gbr"]), "application/zip"),
        ("dossier.tar.gz", gzip.compress(b"tar-ish" * 100), "application/gzip"),
    ],
    EvidenceKind.DOCUMENT: [("user-manual.pdf", pdf(b"% manual\n"), "application/pdf")],
}

CASES = [(kind, name, content, media) for kind, files in VALID.items() for name, content, media in files]


@pytest.fixture
def store(tmp_path: Path) -> LocalEvidenceStore:
    return LocalEvidenceStore(tmp_path / "evidence")


def leftovers(root: Path) -> list[Path]:
    """Every file under the store: after a refused upload there must be none."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_every_kind_has_a_policy_and_a_valid_sample() -> None:
    assert set(DEFAULT_POLICIES) == set(EvidenceKind) == set(VALID)


@pytest.mark.parametrize(("kind", "name", "content", "media"), CASES, ids=[c[1] for c in CASES])
def test_each_kind_accepts_its_types(
    store: LocalEvidenceStore, kind: EvidenceKind, name: str, content: bytes, media: str
) -> None:
    stored = store.put(io.BytesIO(content), kind=kind, filename=name)

    sha = hashlib.sha256(content).hexdigest()
    assert stored == StoredEvidence(sha256=sha, size=len(content), media_type=media, kind=kind, filename=name)
    assert store.exists(sha)
    assert store.info(sha) == stored
    with store.open(sha, verify=True) as handle:
        assert handle.read() == content
    path = store.root / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == content
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(path.with_name(sha + ".json").stat().st_mode) == 0o640
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o750
    assert list((store.root / "tmp").iterdir()) == []


def test_store_satisfies_the_protocol(store: LocalEvidenceStore) -> None:
    assert isinstance(store, EvidenceStore)


@pytest.mark.parametrize(
    ("kind", "name", "content", "detected"),
    [
        (EvidenceKind.MOU, "mou.pdf", png(), "PNG image (image/png)"),
        (EvidenceKind.CX_VIDEO, "cx.mp4", pdf(), "PDF (application/pdf)"),
        (EvidenceKind.CERTIFICATION, "fcc.pdf", mp4(), "MP4 video (video/mp4)"),
        (EvidenceKind.SCHEMATIC, "schematic.pdf", csv(), "UTF-8 text such as CSV (text/plain)"),
        (
            EvidenceKind.AUDIT_REPORT,
            "report.pdf",
            raw_firmware(),
            "unrecognised binary (application/octet-stream)",
        ),
        (
            EvidenceKind.BOM,
            "bom.csv",
            raw_firmware(),
            "binary data that is neither a known file type nor UTF-8 text",
        ),
        (EvidenceKind.BOM, "bom.xlsx", zip_of(["a.txt"]), "ZIP archive (application/zip)"),
        (EvidenceKind.FIRMWARE, "fw.bin", pdf(), "PDF (application/pdf)"),
        (EvidenceKind.ARCHIVE, "dossier.zip", pdf(), "PDF (application/pdf)"),
    ],
)
def test_wrong_type_is_refused_by_content_with_a_message(
    store: LocalEvidenceStore, kind: EvidenceKind, name: str, content: bytes, detected: str
) -> None:
    with pytest.raises(EvidenceError) as refused:
        store.put(io.BytesIO(content), kind=kind, filename=name)

    message = str(refused.value)
    assert f"'{name}' is {detected}" in message
    assert "detected from its content" in message
    for media_type in DEFAULT_POLICIES[kind].media_types:
        assert media_type in message
    assert isinstance(refused.value, DevicemintError)
    assert leftovers(store.root) == []


def test_the_allowed_types_are_named_in_the_refusal(store: LocalEvidenceStore) -> None:
    with pytest.raises(
        EvidenceError, match=r"not accepted as a signed MOU\. Accepted: PDF \(application/pdf\)\."
    ):
        store.put(io.BytesIO(jpeg()), kind=EvidenceKind.MOU, filename="scan.pdf")


def test_text_that_turns_binary_after_the_first_block_is_refused_for_a_bom(store: LocalEvidenceStore) -> None:
    content = b"ref,qty\n" * (BLOCK_SIZE // 8 + 10) + b"\xff\xfe\x00binary"
    with pytest.raises(EvidenceError, match="neither a known file type nor UTF-8 text"):
        store.put(io.BytesIO(content), kind=EvidenceKind.BOM, filename="bom.csv")
    assert leftovers(store.root) == []


def test_multibyte_characters_split_across_blocks_still_count_as_text(store: LocalEvidenceStore) -> None:
    line = "R1,Widerstand 10 kΩ,2\n".encode()
    content = line * (2 * BLOCK_SIZE // len(line) + 3)
    stored = store.put(io.BytesIO(content), kind=EvidenceKind.BOM, filename="bom.csv")
    assert stored.media_type == "text/plain"


def test_empty_file_is_refused(store: LocalEvidenceStore) -> None:
    with pytest.raises(EvidenceError, match="'mou.pdf' is empty"):
        store.put(io.BytesIO(b""), kind=EvidenceKind.MOU, filename="mou.pdf")
    assert leftovers(store.root) == []


class CountingStream(io.RawIOBase):
    """A stream of `size` bytes starting with `head`, that records how much was read."""

    def __init__(self, head: bytes, size: int, *, fail_after: int | None = None) -> None:
        self.head = head
        self.size = size
        self.fail_after = fail_after
        self.position = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.fail_after is not None and self.position >= self.fail_after:
            raise ConnectionResetError("uploader went away")
        n = min(n, self.size - self.position)
        if self.fail_after is not None:
            n = min(n, self.fail_after - self.position)
        start = self.position
        self.position += n
        data = self.head[start : start + n]
        return data + b"\x00" * (n - len(data))


def test_size_limit_refuses_mid_stream_and_leaves_nothing(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path / "ev", limits={EvidenceKind.CX_VIDEO: 3 * MiB})
    stream = CountingStream(mp4(), 100 * MiB)

    with pytest.raises(EvidenceError) as refused:
        store.put(stream, kind=EvidenceKind.CX_VIDEO, filename="cx-assessment.mp4")

    assert "'cx-assessment.mp4' is larger than the 3 MiB allowed for a CX assessment video" in str(
        refused.value
    )
    assert stream.position <= 4 * MiB  # stopped at the limit, not after reading 100 MiB
    assert leftovers(store.root) == []
    assert list((store.root / "tmp").iterdir()) == []


def test_wrong_type_is_refused_from_the_first_block(store: LocalEvidenceStore) -> None:
    stream = CountingStream(pdf(), 100 * MiB)
    with pytest.raises(EvidenceError, match="'cx.mp4' is PDF"):
        store.put(stream, kind=EvidenceKind.CX_VIDEO, filename="cx.mp4")
    assert stream.position <= BLOCK_SIZE
    assert leftovers(store.root) == []


def test_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    content = pdf(b"%" + b"x" * 1000 + b"\n")
    store = LocalEvidenceStore(tmp_path / "ev", limits={"mou": len(content)})  # type: ignore[dict-item]
    assert store.put(io.BytesIO(content), kind=EvidenceKind.MOU, filename="mou.pdf").size == len(content)
    with pytest.raises(EvidenceError, match="larger than the"):
        store.put(io.BytesIO(content + b"\n"), kind=EvidenceKind.MOU, filename="mou2.pdf")


def test_default_limits_are_kept_unless_overridden(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path / "ev", limits={EvidenceKind.BOM: 1 * MiB})
    assert store.policies[EvidenceKind.BOM].max_bytes == 1 * MiB
    assert store.policies[EvidenceKind.CX_VIDEO].max_bytes == 500 * MiB
    assert DEFAULT_POLICIES[EvidenceKind.BOM].max_bytes == 10 * MiB


@pytest.mark.parametrize("limits", [{EvidenceKind.MOU: 0}, {"video": 1}])
def test_bad_limits_are_refused(tmp_path: Path, limits: dict) -> None:
    with pytest.raises(EvidenceError):
        LocalEvidenceStore(tmp_path / "ev", limits=limits)


def test_failure_during_copy_leaves_nothing(store: LocalEvidenceStore) -> None:
    stream = CountingStream(mp4(), 10 * MiB, fail_after=2 * MiB + 123)

    with pytest.raises(ConnectionResetError):
        store.put(stream, kind=EvidenceKind.CX_VIDEO, filename="cx.mp4")

    assert stream.position == 2 * MiB + 123
    assert leftovers(store.root) == []


def test_put_is_idempotent(store: LocalEvidenceStore) -> None:
    content = pdf(b"% audit\n")
    first = store.put(io.BytesIO(content), kind=EvidenceKind.AUDIT_REPORT, filename="audit.pdf")
    path = store.root / first.sha256[:2] / first.sha256[2:4] / first.sha256
    inode = path.stat().st_ino

    second = store.put(io.BytesIO(content), kind=EvidenceKind.AUDIT_REPORT, filename="audit-copy.pdf")

    assert second == first  # the object already stored, with its first name
    assert path.stat().st_ino == inode
    assert len(leftovers(store.root)) == 2  # the object and its sidecar, no temp files


def test_large_video_streams_in_blocks(store: LocalEvidenceStore) -> None:
    stream = CountingStream(mp4(), 5 * MiB + 17)
    stored = store.put(stream, kind=EvidenceKind.CX_VIDEO, filename="cx.mp4")
    assert stored.size == 5 * MiB + 17
    assert store.verify(stored.sha256) == stored


def test_verify_detects_a_tampered_file(store: LocalEvidenceStore) -> None:
    stored = store.put(io.BytesIO(pdf(b"% MOU v1\n")), kind=EvidenceKind.MOU, filename="mou.pdf")
    path = store.root / stored.sha256[:2] / stored.sha256[2:4] / stored.sha256
    assert store.verify(stored.sha256) == stored

    tampered = path.read_bytes().replace(b"v1", b"v2")
    path.write_bytes(tampered)

    with pytest.raises(EvidenceCorrupted, match=f"Evidence {stored.sha256} is corrupted"):
        store.verify(stored.sha256)
    with pytest.raises(EvidenceCorrupted):
        store.open(stored.sha256, verify=True)
    with store.open(stored.sha256) as handle:  # without verify it serves what is there
        assert handle.read() == tampered


def test_put_again_repairs_a_truncated_object(store: LocalEvidenceStore) -> None:
    content = pdf(b"% report\n")
    stored = store.put(io.BytesIO(content), kind=EvidenceKind.AUDIT_REPORT, filename="r.pdf")
    path = store.root / stored.sha256[:2] / stored.sha256[2:4] / stored.sha256
    path.write_bytes(content[:10])

    assert store.put(io.BytesIO(content), kind=EvidenceKind.AUDIT_REPORT, filename="r.pdf") == stored
    assert store.verify(stored.sha256) == stored


def test_lost_metadata_is_reported_and_restored_by_a_new_put(store: LocalEvidenceStore) -> None:
    stored = store.put(io.BytesIO(png()), kind=EvidenceKind.CERTIFICATION, filename="ce.png")
    sidecar = store.root / stored.sha256[:2] / stored.sha256[2:4] / f"{stored.sha256}.json"
    sidecar.unlink()

    with pytest.raises(EvidenceCorrupted, match="metadata of evidence"):
        store.info(stored.sha256)
    assert store.put(io.BytesIO(png()), kind=EvidenceKind.CERTIFICATION, filename="ce.png") == stored
    assert store.info(stored.sha256) == stored


def test_unknown_hash_is_not_found(store: LocalEvidenceStore) -> None:
    unknown = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(unknown)
    with pytest.raises(EvidenceNotFound, match=f"No evidence is stored with SHA-256 {unknown}") as missing:
        store.open(unknown)
    assert isinstance(missing.value, NotFound)
    assert missing.value.exit_code == 4
    with pytest.raises(EvidenceNotFound):
        store.info(unknown)
    with pytest.raises(EvidenceNotFound):
        store.verify(unknown)


def test_hash_is_normalised_and_malformed_hashes_are_refused(store: LocalEvidenceStore) -> None:
    stored = store.put(io.BytesIO(png()), kind=EvidenceKind.CERTIFICATION, filename="ce.png")
    assert store.info("0x" + stored.sha256.upper()) == stored
    with pytest.raises(EvidenceError, match="is not a SHA-256"):
        store.open("../../etc/passwd")


def test_filename_keeps_only_the_base_name(store: LocalEvidenceStore) -> None:
    stored = store.put(io.BytesIO(pdf()), kind=EvidenceKind.MOU, filename="C:\\Users\\ops\\MOU signed.pdf")
    assert stored.filename == "MOU signed.pdf"
    with pytest.raises(EvidenceError, match="is empty"):
        store.put(io.BytesIO(pdf()), kind=EvidenceKind.MOU, filename="uploads/")


def test_unknown_kind_and_text_streams_are_refused(store: LocalEvidenceStore, tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="is not a kind of evidence"):
        store.put(io.BytesIO(pdf()), kind="contract", filename="c.pdf")  # type: ignore[arg-type]
    text_file = tmp_path / "bom.csv"
    text_file.write_text("a,b\n")
    with text_file.open() as text, pytest.raises(EvidenceError, match="binary mode"):
        store.put(text, kind=EvidenceKind.BOM, filename="bom.csv")  # type: ignore[arg-type]
    assert leftovers(store.root) == []
