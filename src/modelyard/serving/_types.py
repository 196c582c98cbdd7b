"""The ASGI types the server's modules share (the ASGI 3 spec's names, as plain aliases)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

#: The connection scope: ``type``, ``method``, ``path``, ``headers``, ``query_string``...
Scope = MutableMapping[str, Any]
#: One event: ``{"type": "http.request", "body": ..., "more_body": ...}``, ``http.response.start``...
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
