"""Monitoring's rows in the metadata store, as service operations: feedback labels, stored
reference profiles, monitoring runs and their results, alert rules, their state and firings.

Everything computed from bytes (windows of the prediction log, reference frames, drift reports)
is computed by the caller, which moves the bytes through ``ws.blobs``; only the rows go through
these operations. On an ``http(s)://`` workspace they run on the server (:mod:`modelyard._rpc`), so
``yard monitor run`` against a team server keeps its alert state there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from modelyard._rpc import op, service
from modelyard._shared import check_int64 as _int64
from modelyard._shared import now_ms
from modelyard._workspace import WorkspaceService
from modelyard.errors import BlobNotFoundError, InvalidArgumentError
from modelyard.monitoring._alerts import AlertEvent, AlertRule, _rule_from_dict
from modelyard.monitoring._schema import (
    monitor_alert_firings,
    monitor_alert_rules,
    monitor_alert_state,
    monitor_feedback,
    monitor_references,
    monitor_results,
    monitor_runs,
)

__all__ = ["MonitorRun", "MonitoringService", "WindowValue"]


@dataclass(frozen=True)
class WindowValue:
    """One metric of a monitoring run (``column`` "" for window-level metrics)."""

    metric: str
    column: str
    value: float | None


@dataclass(frozen=True)
class MonitorRun:
    """One evaluated window as stored: what was compared and the drift summary."""

    model_name: str
    model_version: str | None
    window_start: int
    window_end: int
    rows: int
    reference: str | None
    share_drifted: float | None
    dataset_drift: bool | None
    report_digest: str | None


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _checked_rules(rules: list[AlertRule]) -> list[AlertRule]:
    """The rules as :func:`load_rules` would have read them (bad metric, op, severity refused)."""
    out = []
    for i, r in enumerate(rules):
        _int64("rules", window_ms=r.window_ms, for_ms=r.for_ms)
        if r.window_ms < 1 or r.for_ms < 0:
            raise InvalidArgumentError(
                f"rules: rule #{i + 1} ({r.name!r}) needs window_ms >= 1 and for_ms >= 0; got "
                f"{r.window_ms} and {r.for_ms}."
            )
        raw = {
            "name": r.name,
            "metric": r.metric,
            "threshold": r.threshold,
            "op": r.op,
            "window": f"{r.window_ms}ms",
            "for": f"{r.for_ms}ms" if r.for_ms else 0,
            "severity": r.severity,
            "column": r.column,
        }
        out.append(_rule_from_dict(i, raw, "rules"))
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"rules: rule names must be unique; got {names}.")
    return out


def _newest(
    conn: sa.Connection, table: sa.Table, when: sa.Column[Any], model_name: str, limit: int
) -> Sequence[sa.RowMapping]:
    """The ``limit`` newest rows of ``table`` about ``model_name``, newest first (by ``when``, then id)."""
    return (
        conn.execute(
            sa.select(table)
            .where(table.c.model_name == model_name)
            .order_by(when.desc(), table.c.id.desc())
            .limit(max(0, limit))
        )
        .mappings()
        .all()
    )


@service("monitoring")
class MonitoringService(WorkspaceService):
    """Monitoring rows of one workspace."""

    # -- feedback --------------------------------------------------------------------------------
    @op("writer")
    def record_feedback(self, labels: dict[str, Any]) -> int:
        """Store delayed labels (request id → JSON value); a later label of a request replaces the
        earlier one. Returns how many were stored."""
        now = now_ms()
        rows = [
            {"request_id": str(rid), "label": json.dumps(v), "received_at": now} for rid, v in labels.items()
        ]
        bad = [rid for rid in map(str, labels) if not rid or len(rid) > 128]
        if bad:
            raise InvalidArgumentError(
                f"Feedback request ids must be 1 to 128 characters; {len(bad)} are not (first: {bad[0]!r})."
            )

        def fn(conn: sa.Connection) -> None:
            ids = [r["request_id"] for r in rows]
            for i in range(0, len(ids), 500):
                conn.execute(
                    sa.delete(monitor_feedback).where(monitor_feedback.c.request_id.in_(ids[i : i + 500]))
                )
            for i in range(0, len(rows), 5000):
                conn.execute(sa.insert(monitor_feedback), rows[i : i + 5000])

        if rows:
            self.ws.store.write(fn)
        return len(rows)

    @op("reader")
    def labels_for(self, request_ids: list[str]) -> dict[str, Any]:
        """The stored labels of the given requests (those without one are left out)."""
        out: dict[str, Any] = {}
        with self.ws.store.read() as conn:
            for i in range(0, len(request_ids), 1000):
                chunk = request_ids[i : i + 1000]
                for rid, label in conn.execute(
                    sa.select(monitor_feedback.c.request_id, monitor_feedback.c.label).where(
                        monitor_feedback.c.request_id.in_(chunk)
                    )
                ):
                    out[rid] = json.loads(label)
        return out

    # -- references ------------------------------------------------------------------------------
    @op("reader", on=("model", "model_name"))
    def reference_digest(self, model_name: str, reference: str) -> str | None:
        """The blob (Parquet) of the newest stored frame of ``reference`` for the model, if any."""
        t = monitor_references
        with self.ws.store.read() as conn:
            row = conn.execute(
                sa.select(t.c.profile_digest)
                .where(t.c.model_name == model_name, t.c.reference == reference)
                .order_by(t.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else str(row[0])

    @op("writer", on=("model", "model_name"))
    def record_reference(
        self, model_name: str, reference: str, digest: str, rows: int, columns: list[str]
    ) -> None:
        """Record the stored Parquet frame (blob ``digest``) of ``reference`` for the model."""
        _int64("record_reference", rows=rows)
        if rows < 0:
            raise InvalidArgumentError(f"A reference frame has rows >= 0; got {rows}.")
        if not self.ws.blobs.exists(digest):
            raise BlobNotFoundError(
                f"Cannot record reference {reference!r} of {model_name!r}: blob {digest} is not stored; "
                "upload it first."
            )
        now = now_ms()
        self.ws.store.write(
            lambda conn: conn.execute(
                sa.insert(monitor_references).values(
                    model_name=model_name,
                    reference=reference,
                    profile_digest=digest,
                    rows=rows,
                    columns=json.dumps(columns),
                    created_at=now,
                )
            )
        )

    # -- runs --------------------------------------------------------------------------------------
    @op("writer", on=("model", "run.model_name"))
    def record_run(self, run: MonitorRun, results: list[WindowValue]) -> int:
        """Store one evaluated window and its metrics; returns the run's id."""
        _int64("record_run", window_start=run.window_start, window_end=run.window_end, rows=run.rows)
        if run.report_digest is not None and not self.ws.blobs.exists(run.report_digest):
            raise BlobNotFoundError(
                f"Cannot record a monitoring run of {run.model_name!r}: its report blob "
                f"{run.report_digest} is not stored; upload it first."
            )
        if run.window_end < run.window_start or run.rows < 0:
            raise InvalidArgumentError(
                "A monitoring run needs window_end >= window_start and rows >= 0; got "
                f"{run.window_start}..{run.window_end}, rows={run.rows}."
            )
        keys = [(v.metric, v.column) for v in results]
        if len(set(keys)) != len(keys):
            raise InvalidArgumentError("A monitoring run's results name each (metric, column) once.")
        now = now_ms()

        def fn(conn: sa.Connection) -> int:
            key = conn.execute(
                sa.insert(monitor_runs).values(
                    model_name=run.model_name,
                    model_version=run.model_version,
                    window_start=run.window_start,
                    window_end=run.window_end,
                    rows=run.rows,
                    reference=run.reference,
                    share_drifted=_num(run.share_drifted),
                    dataset_drift=run.dataset_drift,
                    report_digest=run.report_digest,
                    created_at=now,
                )
            ).inserted_primary_key
            assert key is not None  # a one-row INSERT always reports its key
            run_id = int(key[0])
            if results:
                conn.execute(
                    sa.insert(monitor_results),
                    [
                        {
                            "run_id": run_id,
                            "metric": v.metric,
                            "column_name": v.column,
                            "value": _num(v.value),
                        }
                        for v in results
                    ],
                )
            return run_id

        return int(self.ws.store.write(fn))

    @op("reader", on=("model", "model_name"))
    def history(self, model_name: str, limit: int = 30) -> list[dict[str, Any]]:
        """Earlier windows of the model, oldest first: time, share of drifted columns, rows."""
        _int64("history", limit=limit)
        with self.ws.store.read() as conn:
            rows = conn.execute(
                sa.select(monitor_runs.c.window_end, monitor_runs.c.share_drifted, monitor_runs.c.rows)
                .where(monitor_runs.c.model_name == model_name)
                .order_by(monitor_runs.c.window_end.desc(), monitor_runs.c.id.desc())
                .limit(max(0, limit))
            ).all()
        return [{"time_ms": r[0], "share_drifted": r[1] or 0.0, "rows": r[2]} for r in reversed(rows)]

    @op("reader")
    def monitored_models(self) -> list[dict[str, Any]]:
        """Models with monitoring windows: name, windows, the latest window's end, share drifted, drift."""
        r = monitor_runs
        with self.ws.store.read() as conn:
            last = (
                sa.select(r.c.model_name, sa.func.max(r.c.id).label("last_id"), sa.func.count().label("n"))
                .group_by(r.c.model_name)
                .subquery()
            )
            rows = conn.execute(
                sa.select(last.c.model_name, last.c.n, r.c.window_end, r.c.share_drifted, r.c.dataset_drift)
                .join(r, r.c.id == last.c.last_id)
                .order_by(last.c.model_name)
            ).all()
        return [
            {
                "model_name": m,
                "windows": int(n),
                "window_end": int(end),
                "share_drifted": _num(share),
                "dataset_drift": drift,
            }
            for m, n, end, share, drift in rows
        ]

    @op("reader", on=("model", "model_name"))
    def windows(self, model_name: str, limit: int = 30) -> list[dict[str, Any]]:
        """The model's newest ``limit`` windows, oldest first, each with every stored column of
        ``monitor_runs`` and ``results``: ``{column ("" for the window): {metric: value}}``."""
        _int64("windows", limit=limit)
        r, v = monitor_runs, monitor_results
        with self.ws.store.read() as conn:
            runs = _newest(conn, r, r.c.window_end, model_name, limit)
            out = {int(row["id"]): {**dict(row), "results": {}} for row in reversed(runs)}
            if out:
                for run_id, metric, column, value in conn.execute(
                    sa.select(v.c.run_id, v.c.metric, v.c.column_name, v.c.value).where(
                        v.c.run_id.in_(list(out))
                    )
                ):
                    out[int(run_id)]["results"].setdefault(column, {})[metric] = value
        return list(out.values())

    # -- alert rules -------------------------------------------------------------------------------
    @op("writer", on=("model", "model_name"))
    def store_rules(self, model_name: str, rules: list[AlertRule], now_ms: int) -> None:
        """Replace the stored rules of a model (``yard monitor alerts`` shows them)."""
        _int64("store_rules", now_ms=now_ms)
        checked = _checked_rules(rules)

        def fn(conn: sa.Connection) -> None:
            conn.execute(sa.delete(monitor_alert_rules).where(monitor_alert_rules.c.model_name == model_name))
            if checked:
                conn.execute(
                    sa.insert(monitor_alert_rules),
                    [
                        {
                            "model_name": model_name,
                            "name": r.name,
                            "spec": json.dumps(r.__dict__),
                            "updated_at": now_ms,
                        }
                        for r in checked
                    ],
                )

        self.ws.store.write(fn)

    @op("reader", on=("model", "model_name"))
    def stored_rules(self, model_name: str) -> list[AlertRule]:
        """The model's stored rules, by name."""
        with self.ws.store.read() as conn:
            rows = conn.execute(
                sa.select(monitor_alert_rules.c.spec)
                .where(monitor_alert_rules.c.model_name == model_name)
                .order_by(monitor_alert_rules.c.name)
            ).all()
        return [AlertRule(**json.loads(r[0])) for r in rows]

    @op("writer", on=("model", "model_name"))
    def evaluate_rules(
        self,
        model_name: str,
        rules: list[AlertRule],
        values: Mapping[str, float | None],
        now_ms: int,
    ) -> list[AlertEvent]:
        """Advance each rule's state with the current values (``rule.name`` → value); record
        firings. State lives in the store, so ``monitor run --once`` from cron keeps it."""
        _int64("evaluate_rules", now_ms=now_ms)
        checked = _checked_rules(list(rules))
        events: list[AlertEvent] = []

        def fn(conn: sa.Connection) -> None:
            events.clear()  # a retried transaction starts over
            st = monitor_alert_state
            for rule in checked:
                value = values.get(rule.name)
                row = conn.execute(
                    sa.select(st.c.pending_since, st.c.firing_id).where(
                        st.c.model_name == model_name, st.c.rule_name == rule.name
                    )
                ).first()
                pending, firing_id = (row[0], row[1]) if row else (None, None)
                if rule.holds(value):
                    pending = pending if pending is not None else now_ms
                    if firing_id is None and now_ms - pending >= rule.for_ms:
                        ev = AlertEvent("firing", model_name, rule, value, pending, now_ms, 0)
                        key = conn.execute(
                            sa.insert(monitor_alert_firings).values(
                                model_name=model_name,
                                rule_name=rule.name,
                                metric=rule.key(),
                                severity=rule.severity,
                                value=_num(value),
                                threshold=rule.threshold,
                                message=ev.text(),
                                started_at=pending,
                                fired_at=now_ms,
                                resolved_at=None,
                                delivered=False,
                            )
                        ).inserted_primary_key
                        assert key is not None  # a one-row INSERT always reports its key
                        firing_id = key[0]
                        ev.firing_id = int(firing_id)
                        events.append(ev)
                else:
                    if firing_id is not None:
                        conn.execute(
                            sa.update(monitor_alert_firings)
                            .where(monitor_alert_firings.c.id == firing_id)
                            .values(resolved_at=now_ms)
                        )
                        events.append(
                            AlertEvent(
                                "resolved", model_name, rule, value, pending or now_ms, now_ms, int(firing_id)
                            )
                        )
                    pending, firing_id = None, None
                vals = {
                    "pending_since": pending,
                    "firing_id": firing_id,
                    "last_value": _num(value),
                    "evaluated_at": now_ms,
                }
                if row:
                    conn.execute(
                        sa.update(st)
                        .where(st.c.model_name == model_name, st.c.rule_name == rule.name)
                        .values(**vals)
                    )
                else:
                    conn.execute(sa.insert(st).values(model_name=model_name, rule_name=rule.name, **vals))

        self.ws.store.write(fn)
        return events

    @op("writer", on=("model", "model_name"))
    def record_delivery(
        self, model_name: str, firing_id: int, delivered: bool, error: str | None = None
    ) -> None:
        """Record whether a firing of the model reached its webhook (and why not)."""
        _int64("record_delivery", firing_id=firing_id)
        f = monitor_alert_firings
        self.ws.store.write(
            lambda conn: conn.execute(
                sa.update(f)
                .where(f.c.id == firing_id, f.c.model_name == model_name)
                .values(delivered=delivered, delivery_error=error)
            )
        )

    @op("reader", on=("model", "model_name"))
    def recent_firings(self, model_name: str, limit: int = 20) -> list[dict[str, Any]]:
        """The model's newest firings first (every stored column)."""
        _int64("recent_firings", limit=limit)
        f = monitor_alert_firings
        with self.ws.store.read() as conn:
            rows = _newest(conn, f, f.c.fired_at, model_name, limit)
        return [dict(r) for r in rows]

    @op("reader", on=("model", "model_name"))
    def firing_rules(self, model_name: str) -> list[str]:
        """Names of the model's rules firing now."""
        st = monitor_alert_state
        with self.ws.store.read() as conn:
            rows = conn.execute(
                sa.select(st.c.rule_name).where(st.c.model_name == model_name, st.c.firing_id.is_not(None))
            ).all()
        return sorted(r[0] for r in rows)
