"""Errors of the webhooks domain."""

from __future__ import annotations

from devicemint.errors import DevicemintError, UsageError


class WebhookError(DevicemintError):
    """Base of the webhooks errors."""


class InvalidSignature(WebhookError):
    """A webhook request whose signature header does not check out (malformed, stale or forged):
    the receiver should answer 400 and not act on it."""


class SubscriptionInvalid(WebhookError, UsageError):
    """A subscription asked for something that cannot be (an unknown event type, a bad URL); a
    usage error, so the API answers 422 and the CLI exits 2."""


class DeliveryRefused(WebhookError):
    """A delivery cannot be changed that way (for example redelivering one that is not dead);
    the API answers 409."""
