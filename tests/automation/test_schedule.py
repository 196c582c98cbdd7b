"""Schedules: DST in a time zone, once per tick across schedulers, missed ticks caught up once,
concurrency 1 (queue one, drop the rest), a restart mid-run never runs a step twice."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from modelyard.automation import AutomationService, Engine, Schedule

from .conftest import Clock, add_data, write

PARIS = ZoneInfo("Europe/Paris")


def ms(text: str, tz: ZoneInfo = PARIS) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=tz).timestamp() * 1000)


def local(at: int) -> str:
    return dt.datetime.fromtimestamp(at / 1000, PARIS).isoformat(timespec="minutes")


def test_spring_forward_tick_in_the_gap_fires_once_after_it() -> None:
    s = Schedule("30 2 * * *", "Europe/Paris")
    ticks = s.ticks(ms("2026-03-28T00:00"), ms("2026-03-30T12:00"))
    # 02:30 does not exist on 2026-03-29 (02:00 → 03:00): it fires at 03:00 CEST, once
    assert [local(t) for t in ticks] == [
        "2026-03-28T02:30+01:00",
        "2026-03-29T03:00+02:00",
        "2026-03-30T02:30+02:00",
    ]
    every = Schedule("*/30 * * * *", "Europe/Paris").ticks(ms("2026-03-29T01:00"), ms("2026-03-29T03:30"))
    assert [local(t) for t in every] == [
        "2026-03-29T01:30+01:00",
        "2026-03-29T03:00+02:00",  # 02:00, 02:30 and 03:00 are one instant: one firing
        "2026-03-29T03:30+02:00",
    ]


def test_fall_back_repeated_hour_fires_once() -> None:
    s = Schedule("30 2 * * *", "Europe/Paris")
    ticks = s.ticks(ms("2026-10-24T12:00"), ms("2026-10-26T00:00"))
    # 02:30 happens twice on 2026-10-25 (03:00 CEST → 02:00 CET): one firing, at the first
    assert [local(t) for t in ticks] == ["2026-10-25T02:30+02:00"]
    assert s.next_after(ms("2026-10-25T02:31")) == ms("2026-10-26T02:30")
    # the same instant seen from UTC: a day in Paris is 25 hours long that day
    assert Schedule("0 0 * * *", "UTC").ticks(0, 86_400_000 * 3) == [
        86_400_000,
        2 * 86_400_000,
        3 * 86_400_000,
    ]


SCHEDULED = """
- name: nightly
  model: clf
  timezone: Europe/Paris
  on:
    - schedule: "30 2 * * *"
  run: pipelines/train.py:train_pipeline
"""


def _apply(project: Path, uri: str, clock: Clock, text: str = SCHEDULED) -> AutomationService:
    add_data(uri)
    svc = AutomationService(uri, clock=clock)
    from modelyard.automation import parse_automations

    svc.apply(parse_automations(write(project, text)))
    return svc


def test_missed_ticks_are_caught_up_once_with_the_count(project: Path, store_uri: str) -> None:
    clock = Clock(ms("2026-03-01T12:00"))
    svc = _apply(project, store_uri, clock)
    eng = Engine(svc, say=lambda m: None)
    assert eng.tick()["fired"] == []  # nothing retroactive at apply
    clock.ms = ms("2026-03-05T09:00")  # the scheduler was down for four 02:30 ticks
    fired = eng.tick()["fired"]
    assert len(fired) == 1
    assert (
        "tick 2026-03-05T02:30+01:00; 3 earlier tick(s) missed while no scheduler ran, caught up once"
        in (fired[0]["reason"])
    )
    assert eng.tick()["fired"] == []  # the same tick never fires again


def test_two_schedulers_on_one_store_fire_each_tick_once(project: Path, store_uri: str) -> None:
    """Two engines with their own store connections (separate workspaces) race over 30 ticks."""
    from modelyard._workspace import Workspace

    clock = Clock(ms("2026-03-01T12:00"))
    _apply(project, store_uri, clock, SCHEDULED.replace('"30 2 * * *"', '"*/5 * * * *"'))
    engines = [
        Engine(AutomationService(Workspace(store_uri).open(), clock=clock), say=lambda m: None)
        for _ in range(2)
    ]
    # no run may start: the pipeline step is not what this test is about
    for e in engines:
        e.advance = lambda name: None  # type: ignore[method-assign]
    fired: list[dict] = []
    lock = threading.Lock()
    for step in range(30):
        clock.ms += 5 * 60_000
        barrier = threading.Barrier(2)

        def work(e: Engine, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            got = e.tick()["fired"]
            with lock:
                fired.extend(got)

        threads = [threading.Thread(target=work, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(fired) == step + 1, f"tick {step}: {len(fired)} firings"
    runs = AutomationService(store_uri).history("nightly", 1000)
    keys = [r["reason"].split(" tick ")[1] for r in runs]
    assert len(runs) == 30 and len(set(keys)) == 30
    # concurrency 1: nothing ran, so one queued and 29 dropped
    assert sorted(r["state"] for r in runs).count("queued") == 1
    assert sum(r["state"] == "dropped" for r in runs) == 29


def test_manual_trigger_runs_the_pipeline_and_records_links(project: Path, store_uri: str) -> None:
    from modelyard.registry import audit_log

    svc = _apply(project, store_uri, Clock(ms("2026-03-01T12:00")))
    said: list[str] = []
    run = svc.trigger("nightly", "new labels arrived")
    assert run["state"] == "queued" and run["trigger"] == "manual"
    second = svc.trigger("nightly", "again")
    third = svc.trigger("nightly", "and again")
    assert (second["state"], third["state"]) == ("dropped", "dropped")
    Engine(svc, say=said.append).tick()
    r = svc.show_run(run["id"])
    assert r["state"] == "succeeded", r
    assert [(s["kind"], s["state"]) for s in r["steps"]] == [("pipeline", "ok")]
    assert r["model"] == "clf" and r["version"] == 1 and r["pipeline_run_id"]
    assert any("pipeline: OK" in m for m in said)
    entries = audit_log("clf", uri=store_uri)
    assert any(
        e.action == "automation.pipeline" and "new labels arrived" in (e.reason or "") for e in entries
    )


def test_a_restart_mid_run_fails_the_run_visibly_and_never_reruns_the_step(
    project: Path, store_uri: str
) -> None:
    """A scheduler dies in the pipeline step (its lease is left behind). Before the lease expires
    nobody touches the run; after, the next scheduler marks it failed (interrupted), once."""
    import sqlalchemy as sa

    from modelyard.automation._schema import automation_runs, automation_steps

    clock = Clock(ms("2026-03-01T12:00"))
    svc = _apply(project, store_uri, clock)
    run = svc.trigger("nightly", "restart test")
    dead = Engine(svc, owner="dead-worker", lease_ms=60_000)
    assert dead._start("nightly", run["id"]) and dead._lease(run["id"])
    dead._begin(run["id"], 0, "pipeline", "running")  # ... and the process is killed here
    calls: list[str] = []
    other = Engine(svc, owner="new-worker", lease_ms=60_000, say=calls.append)
    other._step_pipeline = lambda *a: calls.append("PIPELINE RAN") or ("", {})  # type: ignore[method-assign]
    other.tick()
    assert svc.show_run(run["id"])["state"] == "running"  # the lease still holds
    clock.ms += 61_000
    other.tick()
    r = svc.show_run(run["id"])
    assert r["state"] == "failed" and "interrupted" in r["error"] and "not run again" in r["error"]
    assert r["steps"][0]["state"] == "failed"
    assert any(e["kind"] == "interrupted" for e in r["events"])
    assert "PIPELINE RAN" not in calls
    other.tick()  # nothing more happens to a failed run; the automation is free for the next one
    with svc.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(automation_steps)).scalar() == 1
        assert conn.execute(sa.select(automation_runs.c.active_slot)).scalar() is None


def test_a_pipeline_without_a_version_fails_and_notifies(
    project: Path, store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    posted: list[dict] = []
    monkeypatch.setenv("HOOK_URL", "http://hooks.invalid/x")
    monkeypatch.setattr(
        httpx,
        "post",
        lambda url, json, timeout: (
            posted.append(json) or httpx.Response(200, request=httpx.Request("POST", url))
        ),
    )
    text = (
        SCHEDULED.replace("train_pipeline", "no_version")
        + "  notify: [env:HOOK_URL]\n  then: {gate: gates.yaml}\n"
    )
    svc = _apply(project, store_uri, Clock(ms("2026-03-01T12:00")), text)
    run = svc.trigger("nightly", "check")
    Engine(svc, say=lambda m: None).tick()
    r = svc.show_run(run["id"])
    assert r["state"] == "failed" and "names no model version" in r["error"]
    assert [s["kind"] for s in r["steps"]] == ["pipeline"]  # the gate never ran
    assert posted and posted[0]["modelyard"] == {"event": "failed", "automation": "nightly", "run": run["id"]}
