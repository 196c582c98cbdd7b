"""Automation tables (migration ``0900``): automations, their runs, the runs' steps, and events.

* ``automations``: one row per automation (``spec`` is the checked JSON from ``automations.yaml``);
  ``schedule_cursor`` (ms), ``alert_cursor`` and ``dataset_cursor`` (row ids) say how far the
  scheduler has looked for triggers.
* ``automation_runs``: one row per firing. ``trigger_key`` is unique per automation
  (``schedule:<tick ms>``, ``alert:<firing id>``, ``dataset:<version row id>``, ``manual:<uuid>``):
  inserting the row *is* the firing, so several schedulers on one store fire a tick once.
  ``active_slot`` / ``queued_slot`` hold the automation's name while the run is running / queued
  (unique: the database keeps ``concurrency: 1`` — one running, one queued, later triggers dropped).
  ``lease_owner`` / ``lease_until`` say which scheduler drives the run.
* ``automation_steps``: one row per started step (pipeline, gate, approval, rollout).
* ``automation_events``: append-only log of a run (fired, queued, dropped, step results, notices).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

from modelyard.store._schema import KEY_LEN, metadata

__all__ = ["automation_events", "automation_runs", "automation_steps", "automations"]

automations = Table(
    "automations",
    metadata,
    Column("name", String(KEY_LEN), primary_key=True),
    Column("spec", Text, nullable=False),  # JSON: the checked automation
    Column("source", Text, nullable=True),  # file the spec came from
    Column("enabled", Integer, nullable=False, default=1),
    Column("schedule_cursor", BigInteger, nullable=True),
    Column("alert_cursor", Integer, nullable=True),
    Column("dataset_cursor", Integer, nullable=True),
    Column("webhook_secret_hash", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(KEY_LEN), nullable=True),
)

automation_runs = Table(
    "automation_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("automation", String(KEY_LEN), nullable=False),
    Column("state", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("trigger_key", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("step", String(16), nullable=True),  # the step in progress (or the last one)
    Column("active_slot", String(KEY_LEN), nullable=True, unique=True),
    Column("queued_slot", String(KEY_LEN), nullable=True, unique=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("model_name", String(KEY_LEN), nullable=True),
    Column("model_version", Integer, nullable=True),
    Column("pipeline_run_id", String(32), nullable=True),
    Column("rollout_id", Integer, nullable=True),
    Column("approved_by", String(KEY_LEN), nullable=True),
    Column("approval", String(16), nullable=True),  # approved | rejected
    Column("error", Text, nullable=True),
    Column("created_by", String(KEY_LEN), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    UniqueConstraint("automation", "trigger_key", name="uq_automation_runs_automation_trigger_key"),
    Index("ix_automation_runs_automation_id", "automation", "id"),
)

automation_steps = Table(
    "automation_steps",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # pipeline | gate | approval | rollout
    Column("state", String(16), nullable=False),  # running | waiting | ok | failed
    Column("message", Text, nullable=True),
    Column("detail", Text, nullable=False),  # JSON links and outcomes
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
)

automation_events = Table(
    "automation_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("automation", String(KEY_LEN), nullable=False),
    Column("run_id", Integer, nullable=True),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("actor", String(KEY_LEN), nullable=True),
    Index("ix_automation_events_run_id_id", "run_id", "id"),
)
