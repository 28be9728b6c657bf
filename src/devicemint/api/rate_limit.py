"""Rate limiting of anonymous API clients with the `limits` library: a sliding window counter per
client address, kept in memory (one process) or in Redis/Valkey (`redis://...`, shared by every
worker). The counter costs the same at any rate; a moving window keeps one timestamp per request
and inserts each at the front of a list, which cost more than a cached verification at 2,000
requests a second."""

from __future__ import annotations

import json

from limits import parse, storage, strategies

from devicemint.errors import ConfigError


class RateLimiter:
    def __init__(self, *, rate: str, storage_url: str = "memory://") -> None:
        try:
            self._limit = parse(rate)
        except ValueError as exc:
            raise ConfigError(f"api_anonymous_rate_limit {rate!r}: not a rate such as '120/minute'") from exc
        self._strategy = strategies.SlidingWindowCounterRateLimiter(storage.storage_from_string(storage_url))

    def hit(self, client: str) -> bool:
        """Count one request of `client`; False once it is over its budget."""
        return self._strategy.hit(self._limit, "anonymous", client)

    def describe(self) -> str:
        return f"{self._limit.amount} per {self._limit.multiples} {self._limit.GRANULARITY.name}".replace(
            " 1 ", " "
        )

    def refusal(self, client: str) -> str:
        """What a client over its budget is told."""
        return f"too many requests from {client} ({self.describe()}); wait a minute, or sign in or use an API key"

    def refusal_body(self, client: str) -> bytes:
        """The 429 body, as the API's error handler writes every refusal."""
        return json.dumps({"error": "rate_limited", "detail": self.refusal(client)}).encode()
