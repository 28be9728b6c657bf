"""Small but real sample evidence files (PDF, MP4, CSV, firmware) for the demo and the tests.

Each is a valid file of its type as far as type detection goes, and its text makes it unique,
so every sample has its own SHA-256.
"""

from __future__ import annotations

import struct


def sample_pdf(text: str) -> bytes:
    """A one-object PDF whose body carries `text` as a comment."""
    body = "".join(f"% {line}\n" for line in text.splitlines()).encode()
    return (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        + body
        + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def sample_mp4(text: str) -> bytes:
    """An ISO base media file: an ftyp box and an mdat box carrying `text`."""
    payload = text.encode()
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isomiso2"
    return ftyp + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload


def sample_bom(model: str) -> bytes:
    rows = [
        "ref,part,manufacturer,quantity",
        "U1,STM32U585,STMicroelectronics,1",
        "U2,SE050C2,NXP,1",
        "U3,BG95-M3,Quectel,1",
        f"PCB,{model} main board,Acme,1",
    ]
    return ("\n".join(rows) + "\n").encode()


def sample_firmware(model: str, version: str) -> bytes:
    """An opaque firmware image (unrecognised binary, as raw images are)."""
    header = f"{model} firmware {version}\n".encode()
    return b"\x7fFW\x00" + header + bytes(range(256)) * 4
