"""One exception hierarchy for devicemint.

Every error carries a message written for the person who hit it: what was wrong, where, and
what would be right. The CLI maps the classes to exit codes; nothing else should need to
inspect messages.
"""

from __future__ import annotations


class DevicemintError(Exception):
    """Base of every error devicemint raises on purpose."""

    exit_code = 1


class UsageError(DevicemintError):
    """The command was called wrongly (bad argument, missing option)."""

    exit_code = 2


class ConfigError(DevicemintError):
    """Settings are missing or contradict each other."""

    exit_code = 2


class ChainError(DevicemintError):
    """The chain could not be reached or answered something unexpected."""


class KeyRefused(DevicemintError):
    """A signing key may not be used here (for example a dev key on a public chain)."""

    exit_code = 2


class NotFound(DevicemintError):
    """The thing asked for does not exist."""

    exit_code = 4
