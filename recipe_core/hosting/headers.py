"""The browser security headers of a hosted dashboard, and the ASGI middleware that adds them.

    SECURITY_HEADERS   what every HTTP response carries (also written into docs/proxy/)
    SecurityHeaders    wraps an ASGI app: `App("main.py", middleware=[Middleware(SecurityHeaders)])`

Streamlit has no option for custom headers; `recipe serve` starts app/hosted.py, an `st.App`
whose middleware is this class. The policy is deliberately minimal: Streamlit needs inline
styles and scripts, WebSockets to itself and data:/blob: images, so the CSP restricts only who
may frame the page (clickjacking), not what the page loads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": "frame-ancestors 'self'",  # only the dashboard may frame itself
    "X-Frame-Options": "SAMEORIGIN",  # the same, for browsers without CSP level 2
    "X-Content-Type-Options": "nosniff",  # a served file is never run as another type
    "Referrer-Policy": "same-origin",  # dashboard URLs are not sent to other sites
}
_ENCODED = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
_NAMES = {name for name, _ in _ENCODED}


class SecurityHeaders:
    """Pure ASGI middleware: every HTTP response gets SECURITY_HEADERS (replacing any same-named
    header the app set). WebSocket and lifespan messages pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _NAMES]
                message = {**message, "headers": kept + _ENCODED}
            await send(message)

        await self.app(scope, receive, send_with_headers)
