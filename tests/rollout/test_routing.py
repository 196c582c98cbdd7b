"""Traffic policies: spec validation, shares within ±2 pp over 10,000 routing decisions, sticky keys,
blue-green preview header, shadow mirroring and A/B feedback over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.datastructures import Headers

from modelyard.errors import InvalidArgumentError
from modelyard.serving import build_app, load_spec
from modelyard.serving._routing import ABRouter, CanaryRouter
from modelyard.serving._server import running

from .conftest import BASE


class _RT:
    def __init__(self, name: str) -> None:
        self.name = name


def _canary(weights: dict[str, float], sticky: str | None = None) -> CanaryRouter:
    spec = load_spec(
        {
            "models": {k: f"m/{i + 1}" for i, k in enumerate(weights)},
            "traffic": {
                "kind": "canary",
                "weights": weights,
                **({"sticky_header": sticky} if sticky else {}),
            },
        }
    )
    return CanaryRouter(spec.traffic, {k: _RT(k) for k in weights})


def test_shares_within_two_points_over_10000_decisions() -> None:
    weights = {"stable": 70, "candidate": 25, "other": 5}
    router = _canary(weights)
    counts = dict.fromkeys(weights, 0)
    for _ in range(10_000):
        counts[router.choose(None).name] += 1
    for slot, w in weights.items():
        assert abs(counts[slot] / 100 - w) <= 2, counts
    # sticky: 10,000 distinct keys split by the weights too, and each key always lands in one place
    sticky = _canary({"stable": 90, "candidate": 10}, sticky="X-User-Id")
    seen: dict[str, str] = {}
    counts = {"stable": 0, "candidate": 0}
    for i in range(10_000):
        slot = sticky.choose(None, Headers({"x-user-id": f"user-{i}"})).name
        seen[f"user-{i}"] = slot
        counts[slot] += 1
    assert abs(counts["candidate"] / 100 - 10) <= 2, counts
    for i in range(0, 10_000, 7):
        assert sticky.choose(None, Headers({"X-User-Id": f"user-{i}"})).name == seen[f"user-{i}"]


def test_ab_arms_are_sticky_and_balanced() -> None:
    spec = load_spec(
        {
            "models": {"stable": "m/1", "candidate": "m/2"},
            "traffic": {"kind": "ab", "arms": {"stable": 50, "candidate": 50}},
        }
    )
    router = ABRouter(spec.traffic, {"stable": _RT("stable"), "candidate": _RT("candidate")})
    arms = [router.arm_for_key(f"k{i}") for i in range(10_000)]
    assert abs(arms.count("candidate") / 100 - 50) <= 2
    assert [router.arm_for_key(f"k{i}") for i in range(500)] == arms[:500]


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        (
            {"kind": "canary", "weights": {"primary": 95, "candidate": 4}},
            "canary weights must add up to 100 (percent); got 95 + 4 = 99",
        ),
        (
            {"kind": "canary", "weights": {"primary": 120, "candidate": -20}},
            "must be a percentage from 0 to 100",
        ),
        (
            {"kind": "canary", "weights": {"primary": 50, "ghost": 50}},
            "traffic sends requests to model slot 'ghost'",
        ),
        ({"kind": "ab", "arms": {"primary": 100}}, "an A/B test needs two arms"),
        ({"kind": "shadow", "primary": "primary", "shadow": "candidate", "percent": 0}, "percent"),
        (
            {
                "kind": "blue_green",
                "active": "primary",
                "preview": "candidate",
                "preview_header": "two words",
            },
            "not a valid HTTP header name",
        ),
        ({"kind": "weighted"}, "traffic"),
    ],
)
def test_bad_policies_are_refused(traffic: dict, message: str) -> None:
    with pytest.raises(
        InvalidArgumentError, match="The deployment spec given as a dict is not valid"
    ) as info:
        load_spec({"models": {"primary": "m/1", "candidate": "m/2"}, "traffic": traffic})
    assert message in str(info.value)


def test_policies_over_http(store: str) -> None:
    """Blue-green preview by header; sticky canary keys; shadow answers never returned; A/B feedback."""
    spec = {
        **BASE,
        "models": {"stable": {"ref": "m/1", "warmup": 0}, "candidate": {"ref": "m/5", "warmup": 0}},
        "traffic": {"kind": "blue_green", "active": "stable", "preview": "candidate"},
    }
    app = build_app(spec, uri=store)
    try:
        with running(app) as h, httpx.Client(base_url=h.url, timeout=120) as c:
            row = {"records": [{"x": 1.0, "y": 0.0, "z": 0.0}]}
            assert c.post("/v1/models/m/predict", json=row).json()["predictions"] == [2.0]
            assert c.post("/v1/models/m/predict", json=row, headers={"X-Yard-Preview": "1"}).json()[
                "predictions"
            ] == [42.0]
            # canary 50/50, sticky by X-User-Id: every key always gets the same version
            app.swap(
                {
                    **spec,
                    "traffic": {
                        "kind": "canary",
                        "weights": {"stable": 50, "candidate": 50},
                        "sticky_header": "X-User-Id",
                    },
                }
            )
            for key in ("ann", "bob", "cy", "dee", "eve"):
                got = {
                    c.post("/v1/models/m/predict", json=row, headers={"x-user-id": key}).headers[
                        "x-model-version"
                    ]
                    for _ in range(6)
                }
                assert len(got) == 1
            # shadow: the primary always answers; the mirrored candidate disagrees (2x+40 vs 2x)
            app.swap({**spec, "traffic": {"kind": "shadow", "primary": "stable", "shadow": "candidate"}})
            for _ in range(30):
                r = c.post("/v1/models/m/predict", json=row)
                assert r.headers["x-model-version"] == "1" and r.json()["predictions"] == [2.0]
            metrics = ""
            deadline = time.monotonic() + 120  # the mirrored calls finish in the background
            while time.monotonic() < deadline:
                metrics = c.get("/metrics").text
                if (
                    'yard_serving_shadow_comparisons_total{model="m",result="disagree",version="5"} 30.0'
                    in metrics
                ):
                    break
                time.sleep(0.05)
            assert (
                'yard_serving_shadow_comparisons_total{model="m",result="disagree",version="5"} 30.0'
                in metrics
            )
            assert 'yard_serving_shadow_distance_total{model="m",version="5"} 1200.0' in metrics
            # feedback needs an A/B test
            r = c.post("/v1/models/m/feedback", json={"key": "ann", "value": 1})
            assert r.status_code == 409 and "No A/B test runs on 'm'" in r.json()["error"]
            app.swap({**spec, "traffic": {"kind": "ab", "arms": {"stable": 50, "candidate": 50}}})
            ver = c.post("/v1/models/m/predict", json=row, headers={"x-user-id": "ann"})
            rid = ver.headers["x-request-id"]
            r = c.post(
                "/v1/models/m/feedback",
                json={
                    "feedback": [
                        {"key": "ann", "value": 1, "outcome": "conversion"},
                        {"request_id": rid, "value": 0, "outcome": "conversion"},
                        {"request_id": "nope", "value": 1},
                    ]
                },
            )
            body = r.json()
            assert r.status_code == 200 and body["accepted"] == 2 and body["unmatched"] == 1
            arm = "stable" if ver.headers["x-model-version"] == "1" else "candidate"
            assert body["arms"] == {arm: 2}
            r = c.post("/v1/models/m/feedback", json={"key": "ann", "value": "yes"})
            assert r.status_code == 400 and "must be a finite number" in r.json()["error"]
    finally:
        app.close()
