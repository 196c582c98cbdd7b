"""Real HTTP on loopback under concurrent load (bounded in count and time).

Nothing here depends on the machine's speed: timeouts are generous (3 s) and only a model that
sleeps longer than the timeout hits one; waits are on conditions, with bounds.

The swap test reads models from the store while answering, so it runs on SQLite and on
PostgreSQL (``backend_store``); the others only load their model at start and run on SQLite
(this file is slow: doubling them would test the store no further)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelyard.serving import build_app
from modelyard.serving._server import running

pytestmark = pytest.mark.filterwarnings("ignore:Loading a pyfunc model")

ROW = {"x": 0.5, "y": -0.2, "z": 1.0}
#: The server's timeout in these tests, and how long the slow model sleeps (always past the timeout).
TIMEOUT_MS = 3000
SLOW_S = 5.0


class Sleepy:
    """Like the conftest's ``Flaky`` (doubles x; raises on x < 0; exits on 666) but sleeps ``SLOW_S``
    on rows with x > 100: always past the timeout, whatever the machine's speed."""

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        if (df["x"] == 666).any():
            raise SystemExit(3)
        if (df["x"] < 0).any():
            raise ValueError("x must not be negative")
        if (df["x"] > 100).any():
            time.sleep(SLOW_S)
        return (df["x"] * 2).to_numpy(dtype=float)


@pytest.fixture(scope="module")
def slow_version(served_store: str) -> int:
    """``Sleepy`` registered as the next version of ``flaky`` (once per module)."""
    import warnings

    from modelyard.registry import register_model
    from modelyard.registry._signature import ColSpec, Signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mv = register_model(
            Sleepy(),
            "flaky",
            flavor="pyfunc",
            uri=served_store,
            signature=Signature([ColSpec(c, "float64") for c in ("x", "y", "z")]),
        )
    return mv.version


def _wait_until_answered(url: str, path: str = "/v1/models/flaky/predict") -> None:
    """Wait (bounded) until a good row gets the primary's answer: the slow predict is over."""
    deadline = time.monotonic() + 120
    while True:
        r = httpx.post(url + path, json={"records": [{"x": 1.0, "y": 0.0, "z": 0.0}]}, timeout=60)
        if r.status_code == 200 and not r.json().get("fallback"):
            return
        assert time.monotonic() < deadline, (
            f"no answer from the primary within 120 s: {r.status_code} {r.text[:200]}"
        )
        time.sleep(0.2)


async def _load(
    url: str,
    stop: threading.Event,
    out: list[tuple[int, dict]],
    *,
    clients: int = 4,
    max_requests: int = 3000,
) -> list[tuple[int, dict]]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:

        async def worker(i: int) -> None:
            k = 0
            while not stop.is_set() and len(out) < max_requests:
                rows = [{**ROW, "x": (i + k) % 7 / 7}] * (1 + (k % 3))
                r = await c.post("/v1/models/clf/predict", json={"records": rows})
                out.append((r.status_code, r.json()))
                k += 1

        await asyncio.gather(*(worker(i) for i in range(clients)))
    return out


def _write_atomically(path, text: str) -> None:  # type: ignore[no-untyped-def]
    """Replace the file in one step, as editors and ``kubectl cp`` do (the watcher never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _wait_for_version(url: str, version: int) -> None:
    """Wait (bounded, 60 s) until /health/ready reports ``version`` as the primary."""
    deadline = time.monotonic() + 60
    while (ready := httpx.get(url + "/health/ready", timeout=60).json()).get("models", {}).get(
        "primary", {}
    ).get("version") != version:
        assert time.monotonic() < deadline, f"the server did not serve version {version} within 60 s: {ready}"
        time.sleep(0.05)


def test_twenty_spec_swaps_under_load_fail_no_request(backend_store, tmp_path, metric) -> None:
    """Swaps through the API, the admin route and the spec-file watcher while 4 clients predict."""
    spec_file = tmp_path / "serve.yaml"
    spec_file.write_text("models: {primary: clf/1}\n")
    app = build_app(spec_file, uri=backend_store, admin_token="tok", watch=True, prediction_log=False)
    results: list[tuple[int, dict]] = []
    stop = threading.Event()
    with running(app) as h:
        t = threading.Thread(target=lambda: asyncio.run(_load(h.url, stop, results)))
        t.start()
        try:
            for i in range(20):
                version = 2 if i % 2 == 0 else 1
                if i < 14:
                    app.swap({"models": {"primary": f"clf/{version}"}})
                elif i < 18:
                    r = httpx.put(
                        f"{h.url}/admin/spec",
                        content=f"models: {{primary: clf/{version}}}",
                        headers={"authorization": "Bearer tok"},
                        timeout=30,
                    )
                    assert r.status_code == 200, r.text
                else:  # the watcher (watch=True) sees the file change and swaps
                    _write_atomically(spec_file, f"models: {{primary: clf/{version}}}\n")
                _wait_for_version(h.url, version)
                # a few requests on this version before the next swap (counted, not timed)
                seen, deadline = len(results), time.monotonic() + 120
                while len(results) < seen + 3:
                    assert time.monotonic() < deadline, "no requests answered within 120 s"
                    time.sleep(0.01)
        finally:
            stop.set()
            t.join(60)
        swaps = {
            outcome: metric(h.url, "yard_serving_spec_swaps_total", outcome=outcome)
            for outcome in ("ok", "failed")
        }
    app.close()
    statuses = Counter(s for s, _ in results)
    assert len(results) >= 60 and set(statuses) == {200}, statuses
    assert {b["version"] for _, b in results} == {1, 2}
    assert swaps == {"ok": 21, "failed": 0}  # the first load, then one swap per step


@pytest.fixture(scope="module")
def flaky_app(served_store, slow_version):  # type: ignore[no-untyped-def]
    spec = {
        "models": {"primary": f"flaky/{slow_version}"},
        "allow_pickle": True,  # the flaky versions are pyfuncs
        "fallback": {"model": "flaky/2"},
        "timeout_ms": TIMEOUT_MS,
        "breaker": {
            "error_rate": 0.5,
            "window": 20,
            "min_requests": 20,
            "open_s": 0.4,
            "half_open_probes": 2,
        },
    }
    app = build_app(spec, uri=served_store, prediction_log=False)
    with running(app) as h:
        yield app, h.url
    app.close()


def _post(url: str, rows: list[dict], path: str = "/v1/models/flaky/predict") -> httpx.Response:
    return httpx.post(url + path, json={"records": rows}, timeout=120)


def test_fallback_answers_when_primary_raises_on_a_share_of_rows(flaky_app, slow_version) -> None:
    _, url = flaky_app
    # the breaker must not open here: 6 bad requests of 24 stay under 50 % of any 20-request window
    rows = [{"x": float(i % 4) - 0.5 + (1 if i % 4 else 0), "y": 0.0, "z": 0.0} for i in range(24)]

    async def burst():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            return await asyncio.gather(
                *(c.post("/v1/models/flaky/predict", json={"records": [r]}) for r in rows)
            )

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {200}
    for row, r in zip(rows, responses, strict=True):
        body = r.json()
        if row["x"] < 0:  # the primary raised on this row: the fallback (x / 2) answered
            assert body["fallback"] and body["fallback_reason"] == "error" and body["version"] == 2
            assert body["predictions"] == [row["x"] / 2]
            assert r.headers["x-fallback"] == "error"
        else:  # rows batched with a bad one still got the primary's answer (x * 2)
            assert not body["fallback"] and body["version"] == slow_version
            assert body["predictions"] == [row["x"] * 2]
    for _ in range(6):  # let good answers refill the breaker window
        _post(url, [{"x": 1.0, "y": 0.0, "z": 0.0}])


def test_fallback_answers_when_primary_sleeps_past_the_timeout(flaky_app) -> None:
    _, url = flaky_app
    r = _post(url, [{"x": 500.0, "y": 0.0, "z": 0.0}])
    assert r.status_code == 200
    body = r.json()
    assert body["fallback"] and body["fallback_reason"] == "timeout" and body["predictions"] == [250.0]
    _wait_until_answered(url)  # the slow predict finishes in its thread
    for _ in range(6):
        _post(url, [{"x": 1.0, "y": 0.0, "z": 0.0}])


def test_breaker_opens_then_closes(flaky_app) -> None:
    app, url = flaky_app
    rt = app.deployment.primary
    before = rt.breaker.transitions
    # the breaker's clock is held still: it stays open until the test moves it past open_s
    now = [0.0]
    real_clock, rt.breaker.clock = rt.breaker.clock, lambda: now[0]
    try:
        _breaker_opens_then_closes(app, url, rt, before, now)
    finally:
        rt.breaker.clock = real_clock


def _breaker_opens_then_closes(app, url, rt, before, now) -> None:  # type: ignore[no-untyped-def]
    bad = [{"x": -1.0, "y": 0.0, "z": 0.0}]
    good = [{"x": 2.0, "y": 0.0, "z": 0.0}]
    for _ in range(25):
        body = _post(url, bad).json()
        assert body["fallback"] and body["fallback_reason"] == "error" and body["predictions"] == [-0.5]
        if rt.breaker.state.value == "open":
            break
    assert rt.breaker.state.value == "open"
    r = _post(url, good).json()  # a good row goes straight to the fallback while open
    assert r["fallback"] and r["fallback_reason"] == "circuit_open" and r["predictions"] == [1.0]
    ready = httpx.get(url + "/health/ready").json()
    assert ready["models"]["primary"]["breaker"]["state"] == "open"
    now[0] += 0.5  # past open_s (0.4 s)
    answers = [_post(url, good).json() for _ in range(3)]
    assert [a["fallback"] for a in answers] == [False, False, False]  # 2 probes, then closed
    assert rt.breaker.state.value == "closed"
    assert rt.breaker.transitions - before == 3
    text = httpx.get(url + "/metrics").text
    samples = {
        (s.labels["from_state"], s.labels["to_state"]): s.value
        for fam in text_string_to_metric_families(text)
        if fam.name == "yard_serving_breaker_transitions"
        for s in fam.samples
        if s.name.endswith("_total")
        and s.labels["model"] == "flaky"
        and s.labels["version"] == str(rt.version)
    }
    assert (
        samples[("closed", "open")] >= 1
        and samples[("open", "half_open")] >= 1
        and samples[("half_open", "closed")] >= 1
    )


def test_no_fallback_gives_503_and_504_not_500(served_store, slow_version) -> None:
    app = build_app(
        {
            "models": {"primary": f"flaky/{slow_version}"},
            "allow_pickle": True,
            "timeout_ms": TIMEOUT_MS,
            "breaker": {"enabled": False},
        },
        uri=served_store,
        prediction_log=False,
    )
    with running(app) as h:
        r = _post(h.url, [{"x": -1.0, "y": 0.0, "z": 0.0}])
        assert r.status_code == 503
        assert r.json() == {
            "error": f"Model flaky/{slow_version} raised ValueError: x must not be negative; no fallback is "
            f"configured.",
            "code": "model_error",
            "request_id": r.headers["x-request-id"],
        }
        r = _post(h.url, [{"x": 666.0, "y": 0.0, "z": 0.0}])  # sys.exit() inside the model
        assert r.status_code == 503
        assert r.json()["error"] == (
            f"Model flaky/{slow_version} raised RuntimeError: the model raised SystemExit: 3; "
            "no fallback is configured."
        )
        r = _post(h.url, [{"x": 500.0, "y": 0.0, "z": 0.0}])
        assert r.status_code == 504 and r.json()["code"] == "timeout"
        deadline = time.monotonic() + 120  # the slow predict finishes in its thread
        while (r := _post(h.url, [{"x": 1.0, "y": 0.0, "z": 0.0}])).status_code == 504:
            assert time.monotonic() < deadline
        assert r.json()["predictions"] == [2.0]
    app.close()


def test_full_queue_answers_429_with_retry_after(served_store, slow_version) -> None:
    # the slow row keeps the model busy for SLOW_S (no timeout cuts it short) while 8 more arrive
    spec = {
        "models": {"primary": f"flaky/{slow_version}"},
        "allow_pickle": True,
        "timeout_ms": 120_000,
        "batching": {"max_queue_rows": 2, "max_batch_size": 1},
    }
    app = build_app(spec, uri=served_store, prediction_log=False)
    with running(app) as h:

        async def burst():  # type: ignore[no-untyped-def]
            async with httpx.AsyncClient(base_url=h.url, timeout=180) as c:
                slow = asyncio.create_task(
                    c.post("/v1/models/flaky/predict", json={"records": [{"x": 500.0, "y": 0, "z": 0}]})
                )
                await asyncio.sleep(0.15)
                rest = await asyncio.gather(
                    *(
                        c.post("/v1/models/flaky/predict", json={"records": [{"x": 1.0, "y": 0, "z": 0}]})
                        for _ in range(8)
                    )
                )
                return [await slow, *rest]

        responses = asyncio.run(burst())
        codes = Counter(r.status_code for r in responses)
        # at most the slow row and 2 queued rows are taken: the others are refused, never lost
        assert codes[429] >= 1 and codes[200] >= 2 and set(codes) <= {200, 429}
        assert responses[0].status_code == 200
        rejected = next(r for r in responses if r.status_code == 429)
        assert int(rejected.headers["retry-after"]) >= 1 and rejected.json()["code"] == "overloaded"
    app.close()


def test_metrics_scrape_parses_and_counts_match(served_store) -> None:
    app = build_app({"models": {"primary": "clf/1"}}, uri=served_store, prediction_log=False)
    sent = Counter()
    with running(app) as h:

        async def go():  # type: ignore[no-untyped-def]
            async with httpx.AsyncClient(base_url=h.url, timeout=120) as c:
                good = [
                    c.post("/v1/models/clf/predict", json={"records": [ROW] * (1 + i % 4)}) for i in range(40)
                ]
                mlflow = [c.post("/invocations", json={"dataframe_records": [ROW]}) for _ in range(5)]
                bad = [c.post("/v1/models/clf/predict", json={"records": [{"x": "a"}]}) for _ in range(3)]
                broken = [
                    c.post(
                        "/v1/models/clf/predict", content=b"{", headers={"content-type": "application/json"}
                    )
                    for _ in range(2)
                ]
                return await asyncio.gather(*good, *mlflow, *bad, *broken)

        for r in asyncio.run(go()):
            sent[(r.url.path.split("/")[1], r.status_code)] += 1
        text = httpx.get(h.url + "/metrics").text
    app.close()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    got = Counter()
    for s in fams["yard_serving_requests"].samples:
        if s.name == "yard_serving_requests_total":
            got[(s.labels["endpoint"], int(s.labels["status"]))] += s.value
    assert got == Counter(
        {("native", 200): 40, ("invocations", 200): 5, ("native", 422): 3, ("native", 400): 2}
    )
    assert sent[("v1", 200)] == 40 and sent[("invocations", 200)] == 5
    rows = sum(s.value for s in fams["yard_serving_batch_rows"].samples if s.name.endswith("_sum"))
    assert rows >= 40 + 60 + 5  # every row predicted once (plus warm-up rows)
    hist = [s for s in fams["yard_serving_request_latency_seconds"].samples if s.name.endswith("_count")]
    assert sum(s.value for s in hist) == 50
    assert fams["yard_serving_in_flight_requests"].samples[0].value == 0
