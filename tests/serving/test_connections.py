"""Slow clients cannot hold a worker: header and body deadlines, keep-alive, connection limit."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from modelyard.serving import build_app
from modelyard.serving._server import running

WAIT_S = 60.0  # generous bound on waiting for the server to close a connection (not a timing assertion)
ROW = {"x": 0.5, "y": -0.2, "z": 1.0}


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by WAIT_S)."""
    sock.settimeout(WAIT_S)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def answer(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


@pytest.fixture(scope="module")
def slow_server(served_store):  # type: ignore[no-untyped-def]
    spec = {
        "models": {"primary": "clf/1"},
        "limits": {"header_timeout_s": 0.3, "body_timeout_s": 0.3, "max_connections": 50},
    }
    app = build_app(spec, uri=served_store, prediction_log=False)
    with running(app) as h:
        host, port = h.url.rsplit("/", 1)[1].split(":")
        yield app, h.url, (host, int(port))
    app.close()


def test_silent_and_trickling_clients_are_closed_with_408(slow_server) -> None:
    _, url, addr = slow_server
    silent = socket.create_connection(addr)
    partial = socket.create_connection(addr)
    partial.sendall(b"POST /v1/models/clf/predict HTTP/1.1\r\nHost: t\r\nContent-Type: app")
    body_short = socket.create_connection(addr)
    body_short.sendall(
        b"POST /v1/models/clf/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"records": ['
    )
    try:
        # while they are held open, other clients are served
        assert (
            httpx.post(url + "/v1/models/clf/predict", json={"records": [ROW]}, timeout=WAIT_S).status_code
            == 200
        )
        for sock, what in ((silent, "headers"), (partial, "headers"), (body_short, "body")):
            status, body = answer(read_until_closed(sock))
            assert status == 408
            assert body == {
                "error": f"The request {what} did not arrive within 0.3 s; the connection is closed.",
                "code": f"{what}_timeout",
            }
    finally:
        for s in (silent, partial, body_short):
            s.close()


def test_keep_alive_connection_serves_several_requests_then_times_out(slow_server) -> None:
    _, _, addr = slow_server
    request = b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n"
    with socket.create_connection(addr) as sock:
        sock.settimeout(WAIT_S)
        for _ in range(3):  # each request on the same connection gets its own header deadline
            sock.sendall(request)
            data = b""
            while b'"alive"}' not in data:
                chunk = sock.recv(4096)
                assert chunk, "the server closed a healthy keep-alive connection"
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health/live HTTP/1.1\r\n")  # then stalls mid-headers
        status, body = answer(read_until_closed(sock))
        assert status == 408 and body["code"] == "headers_timeout"


def _get_until(url: str, status: int) -> httpx.Response:
    """GET ``url`` until it answers ``status`` (bounded by ``WAIT_S``); only 200 or 503 may come first."""
    deadline = time.monotonic() + WAIT_S
    while True:
        r = httpx.get(url, timeout=WAIT_S)
        if r.status_code == status:
            return r
        assert r.status_code in (200, 503), r.status_code
        assert time.monotonic() < deadline, f"no {status} within {WAIT_S} s (last {r.status_code})"
        time.sleep(0.01)


def test_connection_limit_admits_max_connections_and_answers_503_beyond_it(served_store) -> None:
    spec = {"models": {"primary": "clf/1"}, "limits": {"max_connections": 3, "header_timeout_s": 600}}
    app = build_app(spec, uri=served_store, prediction_log=False)
    with running(app) as h:
        host, port = h.url.rsplit("/", 1)[1].split(":")
        held = [socket.create_connection((host, int(port))) for _ in range(3)]  # open, silent
        try:
            # three held fill the limit: once the worker has accepted them, a fourth is refused
            r = _get_until(h.url + "/health/live", 503)
            assert r.text == "Service Unavailable"
            # two held and one request make three: admitted (an off-by-one limit would refuse it forever)
            held.pop().close()
            _get_until(h.url + "/health/live", 200)
            held.append(socket.create_connection((host, int(port))))
            _get_until(h.url + "/health/live", 503)
            for s in held:
                s.close()
            _get_until(h.url + "/health/live", 200)  # once they are gone, requests are served again
            assert httpx.get(h.url + "/health/live", timeout=WAIT_S).status_code == 200
        finally:
            for s in held:
                s.close()
    app.close()


def test_limits_are_validated_in_the_spec() -> None:
    from modelyard.errors import ModelyardError
    from modelyard.serving._spec import load_spec

    spec = load_spec({"models": {"primary": "clf/1"}})
    assert (
        spec.limits.header_timeout_s,
        spec.limits.body_timeout_s,
        spec.limits.keepalive_s,
        spec.limits.max_connections,
    ) == (10.0, 30.0, 30.0, 1000)
    with pytest.raises(ModelyardError, match="header_timeout_s"):
        load_spec({"models": {"primary": "clf/1"}, "limits": {"header_timeout_s": 0}})
