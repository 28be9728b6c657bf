"""Evidence store: the documents of a case file, kept content-addressed.

Evidence is any document of a manufacturer or device application: the signed MOU, audit
reports, videos of the CX assessment, certification documents and the files of a design
dossier. Its SHA-256 is anchored on chain at every decision, so the SHA-256 (lowercase hex)
*is* the address: whoever holds the hash from the chain can fetch the file and check it.

What every backend guarantees (`EvidenceStore`):

- ``put`` streams the upload in 1 MiB blocks, hashing and counting as it copies; it never
  holds a whole video in memory. The media type is detected from the content (magic bytes,
  via the ``filetype`` library), never from the file name, and must be one the kind of
  evidence allows (`DEFAULT_POLICIES`). The size limit of the kind is enforced while
  copying: the upload is refused as soon as it passes the limit and nothing is left behind.
- An object only ever appears under its address complete and with its metadata; putting the
  same content twice returns the object already stored.
- ``open(sha256, verify=True)`` and ``verify(sha256)`` re-hash the stored bytes, so silent
  corruption or tampering is detected rather than served.

The checks themselves (hash, size, type) live in `EvidenceIntake`, which knows nothing about
storage, so every backend enforces the same rules.

`LocalEvidenceStore` is the default: files under ``root/ab/cd/<sha256>`` with a JSON sidecar
``<sha256>.json`` beside each, written to ``root/tmp/`` first, fsynced and renamed into
place (atomic on one file system); directories 0750, files 0640.

How an S3-compatible backend implements the protocol (not implemented here):

- Key: the SHA-256 hex, optionally under a prefix (``evidence/<sha256>``). Bucket
  versioning or object lock (WORM) makes anchored evidence immutable.
- Metadata: ``Content-Type`` is the detected media type; kind, original file name and size
  go in user metadata (``x-amz-meta-kind``, ``x-amz-meta-filename`` percent-encoded since
  headers are ASCII, ``x-amz-meta-size``). ``info`` and ``exists`` are a HeadObject
  (404 -> `EvidenceNotFound`); ``open`` is a streaming GetObject; ``verify`` streams the body
  through SHA-256.
- ``put``: the hash is only known at the end, so the upload goes by multipart upload to a
  temporary key (``incoming/<uuid4>``) with parts of at least 5 MiB (buffer the 1 MiB blocks
  into e.g. 8 MiB parts), every block fed to `EvidenceIntake` first. On refusal or any error,
  AbortMultipartUpload (and a bucket lifecycle rule aborting incomplete uploads after a day
  covers crashes), so nothing is left. On success, CompleteMultipartUpload, then a
  server-side CopyObject to the final key with the metadata (``MetadataDirective=REPLACE``)
  and a conditional write (``If-None-Match: *``) so a second put of the same content keeps the
  first object (idempotent), then DeleteObject of the temporary key. An upload smaller than
  one part can skip the multipart step and PutObject straight to the final key, its hash
  being known before the first byte is sent. S3's own multipart checksums are composite, not
  the SHA-256 of the whole object, so the store's hash is always computed by `EvidenceIntake`.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO, Protocol, runtime_checkable

import filetype

from devicemint.errors import DevicemintError, NotFound

MiB = 1024 * 1024
BLOCK_SIZE = 1 * MiB
# filetype looks at no more than the first 8 KiB; wait for that much before guessing.
_SNIFF_BYTES = 8192

OCTET_STREAM = "application/octet-stream"
TEXT_PLAIN = "text/plain"

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class EvidenceError(DevicemintError):
    """Evidence was refused or cannot be served; the message is for the uploader."""


class EvidenceNotFound(EvidenceError, NotFound):
    """No evidence is stored under that SHA-256."""


class EvidenceCorrupted(EvidenceError):
    """Stored evidence no longer matches its SHA-256 (or lost its metadata): do not trust it."""


class EvidenceKind(StrEnum):
    """What a piece of evidence is for; decides the media types and size it may have."""

    MOU = "mou"
    AUDIT_REPORT = "audit_report"
    CX_VIDEO = "cx_video"
    CERTIFICATION = "certification"
    SCHEMATIC = "schematic"
    BOM = "bom"
    FIRMWARE = "firmware"
    ARCHIVE = "archive"
    DOCUMENT = "document"


@dataclass(frozen=True, slots=True)
class KindPolicy:
    """The media types accepted for one kind of evidence and its size limit in bytes."""

    label: str
    media_types: frozenset[str]
    max_bytes: int


_PDF = "application/pdf"
_IMAGES = frozenset({"image/png", "image/jpeg", "image/tiff", "image/webp"})
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ARCHIVES = frozenset(
    {
        "application/zip",
        "application/gzip",
        "application/x-tar",
        "application/x-xz",
        "application/x-bzip2",
        "application/x-7z-compressed",
    }
)

DEFAULT_POLICIES: Mapping[EvidenceKind, KindPolicy] = MappingProxyType(
    {
        EvidenceKind.MOU: KindPolicy("a signed MOU", frozenset({_PDF}), 25 * MiB),
        EvidenceKind.AUDIT_REPORT: KindPolicy("an audit report", frozenset({_PDF}), 25 * MiB),
        EvidenceKind.CX_VIDEO: KindPolicy(
            "a CX assessment video", frozenset({"video/mp4", "video/webm"}), 500 * MiB
        ),
        EvidenceKind.CERTIFICATION: KindPolicy(
            "a certification document", frozenset({_PDF}) | _IMAGES, 25 * MiB
        ),
        EvidenceKind.SCHEMATIC: KindPolicy("a schematic", frozenset({_PDF}), 25 * MiB),
        # CSV has no magic bytes: it is accepted as text/plain when it is valid UTF-8.
        EvidenceKind.BOM: KindPolicy("a bill of materials", frozenset({TEXT_PLAIN, _XLSX}), 10 * MiB),
        # Raw images have no signature (octet-stream); ELF, Intel HEX (text) and DFU packages do.
        EvidenceKind.FIRMWARE: KindPolicy(
            "a firmware image",
            frozenset({OCTET_STREAM, "application/x-executable", TEXT_PLAIN})
            | _ARCHIVES - {"application/x-7z-compressed"},
            64 * MiB,
        ),
        EvidenceKind.ARCHIVE: KindPolicy("an archive", _ARCHIVES, 200 * MiB),
        EvidenceKind.DOCUMENT: KindPolicy("a document", frozenset({_PDF}), 25 * MiB),
    }
)

_TYPE_NAMES = {
    _PDF: "PDF",
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "image/tiff": "TIFF image",
    "image/webp": "WebP image",
    "video/mp4": "MP4 video",
    "video/webm": "WebM video",
    _XLSX: "Excel workbook (XLSX)",
    TEXT_PLAIN: "UTF-8 text such as CSV",
    OCTET_STREAM: "unrecognised binary",
    "application/x-executable": "ELF executable",
    "application/zip": "ZIP archive",
    "application/gzip": "gzip archive",
    "application/x-tar": "tar archive",
    "application/x-xz": "xz archive",
    "application/x-bzip2": "bzip2 archive",
    "application/x-7z-compressed": "7-Zip archive",
}


def describe_media_type(media_type: str) -> str:
    """A media type as an uploader recognises it: ``PDF (application/pdf)``."""
    name = _TYPE_NAMES.get(media_type)
    return f"{name} ({media_type})" if name else media_type


def policies_with(limits: Mapping[EvidenceKind, int] | None = None) -> Mapping[EvidenceKind, KindPolicy]:
    """The default policies with a deployment's size limits (bytes per kind) laid over them."""
    if not limits:
        return DEFAULT_POLICIES
    merged = dict(DEFAULT_POLICIES)
    for key, max_bytes in limits.items():
        try:
            kind = EvidenceKind(key)
        except ValueError:
            raise EvidenceError(
                f"{key!r} is not a kind of evidence; size limits name one of {_kinds()}."
            ) from None
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise EvidenceError(
                f"The size limit for {kind.value} evidence must be a positive number of bytes, not {max_bytes!r}."
            )
        base = merged[kind]
        merged[kind] = KindPolicy(base.label, base.media_types, max_bytes)
    return MappingProxyType(merged)


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    """One stored piece of evidence; ``sha256`` is its address and what goes on chain."""

    sha256: str
    size: int
    media_type: str
    kind: EvidenceKind
    filename: str


def normalise_sha256(sha256: str) -> str:
    """Lowercase hex of a SHA-256, or an error saying what a SHA-256 looks like."""
    value = sha256.strip().lower() if isinstance(sha256, str) else ""
    if value.startswith("0x"):
        value = value[2:]
    if not _SHA256_RE.match(value):
        raise EvidenceError(f"{sha256!r} is not a SHA-256: expected 64 hexadecimal characters.")
    return value


def clean_filename(filename: str) -> str:
    """The uploader's file name without any directory part; kept for display only."""
    name = re.split(r"[\\/]", filename or "")[-1].strip()
    if not name or name in {".", ".."}:
        raise EvidenceError(f"The file name {filename!r} is empty; give the name of the uploaded file.")
    if len(name) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise EvidenceError(
            f"The file name {filename!r} is not usable: at most 255 characters and no control characters."
        )
    return name


class EvidenceIntake:
    """Checks one upload as it streams: SHA-256, size limit and media type by content.

    Feed every block to `feed` *before* storing it; it raises `EvidenceError` as soon as the
    upload is refused. `finish` returns the verdict. Backend-independent, so a local and an
    S3 store refuse exactly the same uploads.
    """

    def __init__(self, *, kind: EvidenceKind, filename: str, policy: KindPolicy) -> None:
        self.kind = kind
        self.filename = filename
        self.policy = policy
        self.size = 0
        self._hash = hashlib.sha256()
        self._head = bytearray()
        self._media_type: str | None = None
        self._text: codecs.IncrementalDecoder | None = None

    def feed(self, block: bytes) -> None:
        if self.size + len(block) > self.policy.max_bytes:
            raise EvidenceError(
                f"'{self.filename}' is larger than the {_size(self.policy.max_bytes)} allowed for "
                f"{self.policy.label}; the upload was stopped and nothing was kept."
            )
        self.size += len(block)
        self._hash.update(block)
        if self._media_type is None:
            self._head += block
            if len(self._head) >= _SNIFF_BYTES:
                self._sniff()
        elif self._text is not None:
            self._feed_text(block)

    def finish(self) -> tuple[str, int, str]:
        """``(sha256, size, media_type)`` of a complete, accepted upload."""
        if self.size == 0:
            raise EvidenceError(f"'{self.filename}' is empty; upload the document itself.")
        if self._media_type is None:
            self._sniff()
        if self._text is not None:
            try:
                self._text.decode(b"", final=True)
            except UnicodeDecodeError:
                self._not_text()
        assert self._media_type is not None
        self._check_allowed(self._media_type)
        return self._hash.hexdigest(), self.size, self._media_type

    def _sniff(self) -> None:
        head = bytes(self._head[:_SNIFF_BYTES])
        guess = filetype.guess(head)
        if guess is not None:
            self._media_type = guess.mime
            self._check_allowed(guess.mime)
        else:
            # No signature: text (CSV, Intel HEX) if it decodes as UTF-8, else plain binary.
            self._media_type = TEXT_PLAIN
            self._text = codecs.getincrementaldecoder("utf-8")("strict")
            self._feed_text(bytes(self._head))
            if self._media_type == TEXT_PLAIN and TEXT_PLAIN not in self.policy.media_types:
                self._check_allowed(TEXT_PLAIN)
        self._head = bytearray()

    def _feed_text(self, block: bytes) -> None:
        assert self._text is not None
        if b"\x00" in block:
            self._not_text()
            return
        try:
            self._text.decode(block)
        except UnicodeDecodeError:
            self._not_text()

    def _not_text(self) -> None:
        self._text = None
        self._media_type = OCTET_STREAM
        self._check_allowed(OCTET_STREAM)

    def _check_allowed(self, media_type: str) -> None:
        if media_type in self.policy.media_types:
            return
        allowed = ", ".join(describe_media_type(t) for t in sorted(self.policy.media_types))
        if media_type == OCTET_STREAM and TEXT_PLAIN in self.policy.media_types:
            detected = "binary data that is neither a known file type nor UTF-8 text"
        else:
            detected = describe_media_type(media_type)
        raise EvidenceError(
            f"'{self.filename}' is {detected} (detected from its content, not its name), which is "
            f"not accepted as {self.policy.label}. Accepted: {allowed}."
        )


def _kinds() -> str:
    return ", ".join(k.value for k in EvidenceKind)


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"


class Readable(Protocol):
    """Anything ``put`` can stream from: a file opened ``rb``, an upload, a socket reader."""

    def read(self, size: int = -1, /) -> bytes: ...


@runtime_checkable
class EvidenceStore(Protocol):
    """Where evidence lives; addressed by SHA-256 so the chain can point at it."""

    def put(self, stream: Readable, *, kind: EvidenceKind, filename: str) -> StoredEvidence:
        """Check and store an upload, streaming; refuse it whole or store it whole."""
        ...

    def open(self, sha256: str, *, verify: bool = False) -> BinaryIO:
        """The stored bytes, positioned at the start; with ``verify`` re-hashed first."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def info(self, sha256: str) -> StoredEvidence: ...

    def verify(self, sha256: str) -> StoredEvidence:
        """Re-hash the stored bytes; `EvidenceCorrupted` if they no longer match."""
        ...


class LocalEvidenceStore:
    """Evidence as files on local disk: ``root/ab/cd/<sha256>`` plus ``<sha256>.json``."""

    def __init__(self, root: Path, *, limits: Mapping[EvidenceKind, int] | None = None) -> None:
        self.root = Path(root)
        self.policies = policies_with(limits)
        self._tmp = self.root / "tmp"
        for directory in (self.root, self._tmp):
            if not directory.is_dir():
                directory.mkdir(mode=0o750, parents=True, exist_ok=True)
                os.chmod(directory, 0o750)

    # -- paths -----------------------------------------------------------------------------

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _sidecar(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.json"

    # -- writing ---------------------------------------------------------------------------

    def put(self, stream: Readable, *, kind: EvidenceKind, filename: str) -> StoredEvidence:
        try:
            kind = EvidenceKind(kind)
        except ValueError:
            raise EvidenceError(f"{kind!r} is not a kind of evidence; use one of: {_kinds()}.") from None
        name = clean_filename(filename)
        intake = EvidenceIntake(kind=kind, filename=name, policy=self.policies[kind])
        with self._temp_file(".part") as (fd, tmp_path):
            with os.fdopen(fd, "wb", closefd=False) as out:
                while True:
                    block = stream.read(BLOCK_SIZE)
                    if not block:
                        if block is None:
                            raise EvidenceError(f"'{name}' could not be read: the stream gave no data.")
                        break
                    if not isinstance(block, bytes | bytearray | memoryview):
                        raise EvidenceError(f"'{name}' must be opened in binary mode to be stored.")
                    intake.feed(bytes(block))
                    out.write(block)
                out.flush()
                os.fsync(fd)
            sha256, size, media_type = intake.finish()
            evidence = StoredEvidence(sha256, size, media_type, kind, name)

            existing = self._existing(sha256, size)
            if existing is not None:
                return existing
            os.fchmod(fd, 0o640)
            directory = self._path(sha256).parent
            self._make_dirs(directory)
            self._write_sidecar(evidence)
            os.replace(tmp_path, self._path(sha256))
            _fsync_dir(directory)
            return evidence

    def _existing(self, sha256: str, size: int) -> StoredEvidence | None:
        """The stored object for this content, unless it is missing or visibly damaged."""
        path = self._path(sha256)
        try:
            if path.stat().st_size != size:
                return None  # damaged copy: the fresh upload replaces it
            return self._read_sidecar(sha256)
        except (FileNotFoundError, EvidenceCorrupted):
            return None

    def _make_dirs(self, directory: Path) -> None:
        for d in (directory.parent, directory):
            try:
                d.mkdir(mode=0o750)
            except FileExistsError:
                continue
            os.chmod(d, 0o750)
            _fsync_dir(d.parent)

    def _write_sidecar(self, evidence: StoredEvidence) -> None:
        data = json.dumps(
            {
                "schema": "devicemint/evidence/v1",
                "sha256": evidence.sha256,
                "size": evidence.size,
                "media_type": evidence.media_type,
                "kind": evidence.kind.value,
                "filename": evidence.filename,
            },
            ensure_ascii=False,
            sort_keys=True,
        ).encode()
        with self._temp_file(".json") as (fd, tmp_path):
            os.write(fd, data)
            os.fsync(fd)
            os.fchmod(fd, 0o640)
            os.replace(tmp_path, self._sidecar(evidence.sha256))

    @contextlib.contextmanager
    def _temp_file(self, suffix: str) -> Iterator[tuple[int, Path]]:
        """A temp file on the store's file system, removed unless renamed into place."""
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-", suffix=suffix)
        tmp_path = Path(name)
        try:
            yield fd, tmp_path
        finally:
            os.close(fd)
            tmp_path.unlink(missing_ok=True)

    # -- reading ---------------------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        return self._path(normalise_sha256(sha256)).is_file()

    def info(self, sha256: str) -> StoredEvidence:
        sha256 = normalise_sha256(sha256)
        if not self._path(sha256).is_file():
            raise EvidenceNotFound(f"No evidence is stored with SHA-256 {sha256}.")
        return self._read_sidecar(sha256)

    def open(self, sha256: str, *, verify: bool = False) -> BinaryIO:
        sha256 = normalise_sha256(sha256)
        try:
            handle = self._path(sha256).open("rb")
        except FileNotFoundError:
            raise EvidenceNotFound(f"No evidence is stored with SHA-256 {sha256}.") from None
        if verify:
            try:
                self._check_hash(sha256, handle)
                handle.seek(0)
            except BaseException:
                handle.close()
                raise
        return handle

    def verify(self, sha256: str) -> StoredEvidence:
        sha256 = normalise_sha256(sha256)
        evidence = self.info(sha256)
        with self.open(sha256) as handle:
            size = self._check_hash(sha256, handle)
        if size != evidence.size:
            raise EvidenceCorrupted(
                f"Evidence {sha256} is {size} bytes but was stored as {evidence.size}; its metadata is damaged."
            )
        return evidence

    def _check_hash(self, sha256: str, handle: BinaryIO) -> int:
        digest = hashlib.sha256()
        size = 0
        while block := handle.read(BLOCK_SIZE):
            digest.update(block)
            size += len(block)
        if digest.hexdigest() != sha256:
            raise EvidenceCorrupted(
                f"Evidence {sha256} is corrupted: its content now hashes to {digest.hexdigest()}. "
                "Restore it from a backup or have it uploaded again."
            )
        return size

    def _read_sidecar(self, sha256: str) -> StoredEvidence:
        try:
            data = json.loads(self._sidecar(sha256).read_bytes())
            evidence = StoredEvidence(
                sha256=data["sha256"],
                size=int(data["size"]),
                media_type=str(data["media_type"]),
                kind=EvidenceKind(data["kind"]),
                filename=str(data["filename"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EvidenceCorrupted(
                f"The metadata of evidence {sha256} is missing or unreadable; upload the file again to restore it."
            ) from exc
        if evidence.sha256 != sha256:
            raise EvidenceCorrupted(f"The metadata of evidence {sha256} belongs to another object.")
        return evidence


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
