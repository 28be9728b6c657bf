"""Errors of the auth domain; the API maps them to 401 / 403 / 422."""

from __future__ import annotations

from devicemint.errors import DevicemintError


class AuthError(DevicemintError):
    """Base of the auth errors."""


class MalformedSignIn(AuthError):
    """The sign-in request is not a well-formed EIP-4361 message and signature (HTTP 422)."""


class SignInRefused(AuthError):
    """A well-formed sign-in was refused: wrong domain or chain, stale or replayed nonce,
    expired message or a signature by another key (HTTP 401)."""


class PermissionRefused(AuthError):
    """The caller is known but may not do this (HTTP 403)."""
