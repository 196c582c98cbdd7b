"""The serving protocol sends a response's head and body in one write, and never holds back what
must go out on its own (``100 Continue``, a body-less answer, pipelined answers)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelyard.serving._protocol import DeadlineHttpToolsProtocol
from modelyard.serving._server import uvicorn_config


class Transport:
    """An asyncio transport that records every write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    reply = b'{"echo":"' + body + b'"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(reply)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply})


def exchange(*requests: bytes, answers: int) -> list[bytes]:
    """Feed ``requests`` to one connection; the transport's writes once ``answers`` responses ended."""

    async def go() -> list[bytes]:
        from uvicorn.server import ServerState

        config = uvicorn_config(app)
        config.load()
        state = ServerState()
        protocol = DeadlineHttpToolsProtocol(config, state, {}, asyncio.get_running_loop())
        transport = Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        for raw in requests:
            protocol.data_received(raw)
            await asyncio.sleep(0)
        for _ in range(10_000):  # bounded: each pass lets the app's task run one step
            if state.total_requests >= answers:
                break
            await asyncio.sleep(0)
        protocol.connection_lost(None)
        assert state.total_requests == answers
        return transport.writes

    return asyncio.run(go())


def test_head_and_body_leave_in_one_write() -> None:
    writes = exchange(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\nhi", answers=1)
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b'\r\n\r\n{"echo":"hi"}')


def test_a_body_less_answer_and_a_head_request_still_send_their_head() -> None:
    writes = exchange(b"GET /empty HTTP/1.1\r\nhost: a\r\n\r\n", answers=1)
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 204 No Content\r\n")
    writes = exchange(b"HEAD /x HTTP/1.1\r\nhost: a\r\n\r\n", answers=1)
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n")  # the head only


def test_100_continue_is_not_held_back() -> None:
    head = b"POST /x HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n"

    async def go() -> list[bytes]:
        from uvicorn.server import ServerState

        config = uvicorn_config(app)
        config.load()
        state = ServerState()
        protocol = DeadlineHttpToolsProtocol(config, state, {}, asyncio.get_running_loop())
        transport = Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(head)
        for _ in range(10_000):  # the client waits for 100 Continue before sending the body
            if transport.writes:
                break
            await asyncio.sleep(0)
        assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        protocol.data_received(b"ok")
        for _ in range(10_000):
            if state.total_requests:
                break
            await asyncio.sleep(0)
        protocol.connection_lost(None)
        return transport.writes

    writes = asyncio.run(go())
    assert len(writes) == 2 and writes[1].endswith(b'{"echo":"ok"}')


def test_pipelined_requests_and_a_streamed_answer_arrive_whole_and_in_order() -> None:
    writes = exchange(
        b"HEAD /x HTTP/1.1\r\nhost: a\r\n\r\n"
        b"GET /stream HTTP/1.1\r\nhost: a\r\n\r\n"
        b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\n\r\nz",
        answers=3,
    )
    raw = b"".join(writes)
    first, rest = raw.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert rest.startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding: chunked" in rest
    assert b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n" in rest
    assert rest.endswith(b'{"echo":"z"}')
    assert writes[0] == first + b"\r\n\r\n"  # the head-only answer went out before the next began


@pytest.mark.parametrize("timeout_s", [0.05, 2.0, 30.0])
def test_one_sweeper_per_loop_ticks_at_a_tenth_of_the_shortest_timeout(timeout_s: float) -> None:
    from modelyard.serving._protocol import _sweeper
    from modelyard.serving._spec import LimitsSpec

    async def go() -> float:
        from uvicorn.server import ServerState

        config = uvicorn_config(app, LimitsSpec(header_timeout_s=timeout_s, body_timeout_s=60.0))
        config.load()
        loop = asyncio.get_running_loop()
        protocols = [DeadlineHttpToolsProtocol(config, ServerState(), {}, loop) for _ in range(3)]
        for p in protocols:
            p.connection_made(Transport())  # type: ignore[arg-type]
        sweeper = _sweeper(loop)
        assert sweeper.protocols == set(protocols)
        for p in protocols:
            p.connection_lost(None)
        assert not sweeper.protocols
        return sweeper.tick

    assert asyncio.run(go()) == pytest.approx(min(1.0, timeout_s / 10))
