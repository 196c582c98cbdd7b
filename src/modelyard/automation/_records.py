"""Automation runs as stored, and how they read: :func:`run_dict`, :func:`step_dict`, states."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ACTIVE", "FINISHED", "STEP_KINDS", "plan", "run_dict", "step_dict"]

#: states of a run: queued (waiting for the one running before it), running (a step executes or
#: waits: approval, rollout), succeeded, failed, dropped (triggered while one ran and one was queued)
ACTIVE = ("running",)
FINISHED = ("succeeded", "failed", "dropped")
STEP_KINDS = ("pipeline", "gate", "approval", "rollout")


def plan(spec: dict[str, Any]) -> list[str]:
    """The steps a run of ``spec`` goes through, in order."""
    return ["pipeline"] + [k for k in ("gate", "approval", "rollout") if spec.get(k)]


def run_dict(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "automation": row.automation,
        "state": row.state,
        "trigger": row.trigger,
        "reason": row.reason,
        "step": row.step,
        "model": row.model_name,
        "version": row.model_version,
        "pipeline_run_id": row.pipeline_run_id,
        "rollout_id": row.rollout_id,
        "approval": row.approval,
        "approved_by": row.approved_by,
        "error": row.error,
        "created_by": row.created_by,
        "created_at": int(row.created_at),
        "started_at": row.started_at,
        "finished_at": row.finished_at,
    }


def step_dict(row: Any) -> dict[str, Any]:
    return {
        "idx": int(row.idx),
        "kind": row.kind,
        "state": row.state,
        "message": row.message,
        "detail": json.loads(row.detail or "{}"),
        "started_at": int(row.started_at),
        "ended_at": row.ended_at,
    }
