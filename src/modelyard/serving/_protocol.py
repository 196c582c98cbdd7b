"""uvicorn's httptools protocol with a header-read and a body-read deadline per request.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but waits forever for a
request's headers or body: a client that opens connections and trickles bytes (or none at all)
holds them, and the worker's file descriptors, for good. Here every request must finish its
headers within ``header_timeout_s`` of its first byte (of the connection opening, for the first
request) and its body within ``body_timeout_s`` of the headers; otherwise the server answers
``408`` (when no answer has started) and closes the connection. The deadlines come from the
uvicorn ``Config`` (attributes ``yard_header_timeout_s`` and ``yard_body_timeout_s``; set by
:func:`modelyard.serving._server.uvicorn_config`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DEFAULT_BODY_TIMEOUT_S", "DEFAULT_HEADER_TIMEOUT_S", "DeadlineHttpToolsProtocol"]

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 30.0


def _timeout_response(what: str, seconds: float) -> bytes:
    body = json.dumps(
        {
            "error": f"The request {what} did not arrive within {seconds:g} s; the connection is closed.",
            "code": f"{what}_timeout",
        }
    ).encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` plus the header and body deadlines."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timeout = float(getattr(config, "yard_header_timeout_s", DEFAULT_HEADER_TIMEOUT_S) or 0)
        self._body_timeout = float(getattr(config, "yard_body_timeout_s", DEFAULT_BODY_TIMEOUT_S) or 0)
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self, what: str) -> None:
        self._disarm()
        seconds = self._header_timeout if what == "headers" else self._body_timeout
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, self._expire, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, what: str, seconds: float) -> None:
        self._deadline = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        cycle = self.cycle
        if what == "headers" or (cycle is not None and not cycle.response_started):
            self.logger.info("closing a connection whose request %s took longer than %g s", what, seconds)
            transport.write(_timeout_response("headers" if what == "headers" else "body", seconds))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        transport.close()

    # -- asyncio.Protocol and parser callbacks ---------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm("headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a keep-alive connection's next request
            self._arm("headers")

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._arm("body")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
