"""The verify endpoint's fast path: an ASGI layer in front of the app that answers
`GET /certificates/{query}/verify` for an anonymous client from the cache, while nothing that
could change a standing has changed, before routing, dependency injection and validation (which
cost most of such a request's time). Anything else, including every request that presents a
credential and every answer not cached yet, goes to the app's own route, which gives the same
body, ETag and headers (tests compare them).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from devicemint.api.deps import SESSION_COOKIE
from devicemint.api.rate_limit import RateLimiter
from devicemint.devices.certificates import Answer, Certificates

PREFIX, SUFFIX = "/certificates/", "/verify"
CACHE_CONTROL = "public, max-age=0, must-revalidate"
_CREDENTIALS = (b"x-api-key", b"authorization")
_SESSION = SESSION_COOKIE.encode() + b"="


class VerifyFastPath:
    def __init__(self, app: ASGIApp, *, certificates: Certificates, rate_limiter: RateLimiter | None) -> None:
        self.app = app
        self._certificates = certificates
        self._rate_limiter = rate_limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self._cached(scope)
        if answer is None:
            await self.app(scope, receive, send)
            return
        status, headers, body = self._response(scope, answer)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _cached(self, scope: Scope) -> Answer | None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        path: str = scope["path"]
        if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
            return None
        query = path[len(PREFIX) : -len(SUFFIX)]
        if not query or "/" in query or _presents_credentials(scope):
            return None
        return self._certificates.unchanged(query)

    def _response(self, scope: Scope, answer: Answer) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        client = scope["client"][0] if scope.get("client") else "unknown"
        if self._rate_limiter is not None and not self._rate_limiter.hit(client):
            body = self._rate_limiter.refusal_body(client)
            return 429, [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))], body
        etag = answer.etag.encode()
        headers = [(b"etag", etag), (b"cache-control", CACHE_CONTROL.encode())]
        if etag in _if_none_match(scope):
            return 304, headers, b""
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer.body))]
        return 200, headers, answer.body


def _presents_credentials(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name in _CREDENTIALS or (name == b"cookie" and _SESSION in value):
            return True
    return False


def _if_none_match(scope: Scope) -> set[bytes]:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return {tag.strip() for tag in value.split(b",")}
    return set()
