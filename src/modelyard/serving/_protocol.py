"""uvicorn's httptools protocol with a header-read and a body-read deadline per request.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but waits forever for a
request's headers or body: a client that opens connections and trickles bytes (or none at all)
holds them, and the worker's file descriptors, for good. Here every request must finish its
headers within ``header_timeout_s`` of its first byte (of the connection opening, for the first
request) and its body within ``body_timeout_s`` of the headers; otherwise the server answers
``408`` (when no answer has started) and closes the connection. The deadlines come from the
uvicorn ``Config`` (attributes ``yard_header_timeout_s`` and ``yard_body_timeout_s``; set by
:func:`modelyard.serving._server.uvicorn_config`).

The deadlines cost no timer per request: a request sets its deadline (a float) and one sweeper
per event loop, ticking at a tenth of the shortest timeout (at most once a second), closes the
connections past theirs, so a deadline fires at most a tick late.

A response's head and body leave in one ``write`` (one system call and, for a small answer, one
TCP segment, instead of two): the head that uvicorn writes on ``http.response.start`` is held
until the first body write, and written on its own when the response ends without a body (HEAD,
204) or the connection closes.
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


class _Sweeper:
    """Closes the connections of one event loop whose deadline has passed, every ``tick`` s."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.protocols: set[DeadlineHttpToolsProtocol] = set()
        self.tick = 1.0
        self._handle: asyncio.TimerHandle | None = None

    def add(self, protocol: DeadlineHttpToolsProtocol, shortest: float) -> None:
        self.protocols.add(protocol)
        tick = min(1.0, max(0.005, shortest / 10))
        if tick < self.tick:
            self.tick = tick
            if self._handle is not None:  # a shorter timeout than the ticking one: tick sooner
                self._handle.cancel()
                self._handle = None
        if self._handle is None:
            self._handle = self.loop.call_later(self.tick, self._sweep)

    def _sweep(self) -> None:
        self._handle = None
        now = self.loop.time()
        for protocol in [p for p in self.protocols if 0 < p._deadline_at <= now]:
            protocol._deadline_at = 0.0
            protocol._expire(protocol._deadline_what)
        if self.protocols:
            self._handle = self.loop.call_later(self.tick, self._sweep)


_SWEEPERS: dict[asyncio.AbstractEventLoop, _Sweeper] = {}


def _sweeper(loop: asyncio.AbstractEventLoop) -> _Sweeper:
    sweeper = _SWEEPERS.get(loop)
    if sweeper is None:
        for old in [lp for lp in _SWEEPERS if lp.is_closed()]:  # loops of earlier servers (tests)
            del _SWEEPERS[old]
        sweeper = _SWEEPERS[loop] = _Sweeper(loop)
    return sweeper


class _HeldHead:
    """The connection's transport as one response cycle sees it: the response's head (its first
    write once the response started; a ``100 Continue`` goes straight out) is held and leaves
    joined to the next write (the body), or alone when the response ends without one."""

    __slots__ = ("_cycle", "_done", "_held", "_transport")

    def __init__(self, transport: Any, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._done = cycle.on_response
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            cycle = self._cycle
            if cycle is not None and cycle.response_started:
                self._held = bytes(data)
            else:
                self._transport.write(data)
            return
        self._held = b""  # the head is out: later writes go straight through
        self._transport.write(held + data if held else data)

    def flush(self) -> None:
        held = self._held
        self._held = b""
        if held:
            self._transport.write(held)

    def finish(self) -> None:
        """The cycle's ``on_response``: the response is complete."""
        self.flush()
        self._cycle = None
        self._done()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` plus the header and body deadlines, and one write per response."""

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
        self._deadline_at = 0.0  # on the loop's clock; 0: none
        self._deadline_what = "headers"
        timeouts = [t for t in (self._header_timeout, self._body_timeout) if t > 0]
        self._sweeper = _sweeper(self.loop) if timeouts else None
        self._shortest = min(timeouts) if timeouts else 0.0

    def _arm(self, what: str) -> None:
        seconds = self._header_timeout if what == "headers" else self._body_timeout
        if seconds > 0:
            self._deadline_at = self.loop.time() + seconds
            self._deadline_what = what
        else:
            self._deadline_at = 0.0

    def _disarm(self) -> None:
        self._deadline_at = 0.0

    def _expire(self, what: str) -> None:
        seconds = self._header_timeout if what == "headers" else self._body_timeout
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
        if self._sweeper is not None:
            self._sweeper.add(self, self._shortest)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._sweeper is not None:
            self._sweeper.protocols.discard(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._deadline_at:  # a keep-alive connection's next request
            self._arm("headers")

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._arm("body")
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:  # the head waits for the body
            held = _HeldHead(self.transport, cycle)
            cycle.transport = held  # type: ignore[assignment]  # a transport to the cycle
            cycle.on_response = held.finish

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
