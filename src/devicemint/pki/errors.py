"""Errors of the chain of trust, written for the person who hit them."""

from __future__ import annotations

from devicemint.errors import DevicemintError


class PkiError(DevicemintError):
    """A certificate, key or CRL cannot be issued, loaded or used as asked."""


class NoFoundationRoot(PkiError):
    """The foundation root CA has not been created in this installation yet."""

    def __init__(self) -> None:
        super().__init__("there is no foundation root CA yet; create it with `devicemint pki init-root`")
