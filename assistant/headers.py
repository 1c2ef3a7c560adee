"""Security headers on every response, in one place: Content-Security-Policy (with frame-ancestors),
X-Content-Type-Options, Referrer-Policy and X-Frame-Options.

Only the widget (/widget/…) may be framed by other sites: by the origins in `Config.frame_ancestors` (default: the
CORS origins, `Config.allowed_origins`); every other page only by this site itself. Nothing is loaded from another
host: the pages, the chat script and /docs (swagger-ui from the fastapi-offline package) are all served here.
Gradio's page and swagger-ui start with inline scripts, hence 'unsafe-inline' for scripts and styles; Gradio's HTML
component evaluates its scripts from strings (it shows "Error rendering" without 'unsafe-eval'), hence that too.
What the policy buys is that nothing runs or loads from another origin, no plug-ins, and no framing by others."""
from __future__ import annotations

WIDGET_PREFIX = "/widget"

_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self' 'unsafe-inline' 'unsafe-eval'", "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:", "font-src 'self' data:", "connect-src 'self'", "media-src 'self' blob:",
    "worker-src 'self' blob:", "frame-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
])


def frame_ancestors(origins: list[str] | tuple[str, ...]) -> str:
    """The CSP frame-ancestors source list: 'self' and the given origins ("*" is refused by check_origins)."""
    return " ".join(["'self'", *origins])


def check_origins(origins: list[str] | tuple[str, ...], setting: str = "ASSISTANT_FRAME_ANCESTORS") -> None:
    """One-line error at start-up for an origin a CSP source list cannot hold."""
    for origin in origins:
        if not origin or any(ch in origin for ch in " ;,'\"") or origin == "*" or "://" not in origin:
            raise ValueError(f"{setting}: {origin!r} is not an origin like https://helpdesk.example.org")


def security_headers(path: str, widget_ancestors: str) -> list[tuple[bytes, bytes]]:
    """The headers for a response to `path`."""
    widget = path == WIDGET_PREFIX or path.startswith(WIDGET_PREFIX + "/")
    ancestors = widget_ancestors if widget else "'self'"
    headers = [
        (b"content-security-policy", f"{_POLICY}; frame-ancestors {ancestors}".encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
    ]
    if not widget:  # for browsers without CSP level 2; the widget relies on frame-ancestors alone
        headers.append((b"x-frame-options", b"SAMEORIGIN"))
    return headers


class SecurityHeaders:
    """Pure ASGI middleware: adds the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app, frame_origins: list[str] | tuple[str, ...] = ()) -> None:
        check_origins(frame_origins)
        self.app = app
        self.widget_ancestors = frame_ancestors(frame_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope.get("path", ""), self.widget_ancestors)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                have = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in have]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
