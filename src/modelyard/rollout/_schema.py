"""Rollout tables (migration ``0500``): rollouts, their steps, and every event.

* ``rollouts``: one row per rollout; ``state`` is a :class:`~modelyard.rollout.RolloutState`;
  ``active_model`` holds the model name while the rollout is not finished (unique: one live
  rollout per model, enforced by the database) and NULL after; ``revision`` is bumped by every
  change (optimistic concurrency between the controller and manual commands); ``lease_owner`` /
  ``lease_until`` say which controller drives it.
* ``rollout_steps``: one row per step (traffic policy, the metrics snapshot at the start of its
  window, its result).
* ``rollout_events``: append-only log (start, step, analysis, decision, pause, resume, promote,
  abort, rollback, webhook failures), shown by ``yard rollout status``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from modelyard.store._schema import KEY_LEN, metadata

__all__ = ["rollout_events", "rollout_steps", "rollouts"]

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(KEY_LEN), nullable=False),
    Column("strategy", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("stable_version", Integer, nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("step_started_at", BigInteger, nullable=True),
    Column("config", Text, nullable=False),  # JSON RolloutConfig
    Column("base_spec", Text, nullable=False),  # JSON deployment spec when the rollout started
    Column("target", Text, nullable=False),  # JSON {"url": ...} or {"local": true}
    Column("active_model", String(KEY_LEN), nullable=True, unique=True),
    Column("revision", Integer, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("analysis", Text, nullable=True),  # JSON: the latest analysis of the current step
    Column("reason", Text, nullable=True),  # why the last decision was taken
    Column("created_by", String(KEY_LEN), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    Index("ix_rollouts_model_name_id", "model_name", "id"),
    Index("ix_rollouts_state", "state"),
)

rollout_steps = Table(
    "rollout_steps",
    metadata,
    Column("rollout_id", Integer, ForeignKey("rollouts.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("traffic", Text, nullable=False),  # JSON traffic policy
    Column("baseline", Text, nullable=True),  # JSON metrics snapshot at the start of the window
    Column("started_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    Column("result", String(16), nullable=True),  # successful | failed | inconclusive
)

rollout_events = Table(
    "rollout_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rollout_id", Integer, ForeignKey("rollouts.id"), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("step", Integer, nullable=True),
    Column("message", Text, nullable=False),
    Column("detail", Text, nullable=False),  # JSON
    Column("actor", String(KEY_LEN), nullable=True),
    Index("ix_rollout_events_rollout_id_id", "rollout_id", "id"),
)
