"""Which things an operation acts on, for the role check before it runs.

An operation declares ``@op(role, on=(kind, argument))``; the caller needs ``role`` globally or by a
grant on the thing the argument names. Experiments, models and datasets are named directly; a run
is checked on its experiment and a rollout on its model (both looked up here, and cached: neither
ever moves), so a grant on one model covers its rollouts and nothing else's.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from modelyard._rpc import OpSpec
from modelyard._workspace import Workspace

__all__ = ["ObjectNames", "scopes"]

_CACHE_MAX = 100_000


class ObjectNames:
    """run id → experiment name, rollout id → model name (neither changes once stored)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._runs: dict[str, str | None] = {}
        self._rollouts: dict[int, str | None] = {}

    def __call__(self, run_id: str) -> str | None:
        """The experiment of run ``run_id`` (None: no such run)."""
        return self.many({run_id})[run_id]

    def many(self, run_ids: set[str]) -> dict[str, str | None]:
        """The experiment of each run (None: no such run); the ones not cached yet in one query."""
        missing = sorted(r for r in run_ids if r not in self._runs)
        for start in range(0, len(missing), 500):
            from modelyard.store._schema import experiments, runs

            chunk = missing[start : start + 500]
            with self.ws.store.read() as conn:
                found = conn.execute(
                    sa.select(runs.c.id, experiments.c.name)
                    .select_from(runs.join(experiments, runs.c.experiment_id == experiments.c.id))
                    .where(runs.c.id.in_(chunk))
                ).all()
            for run_id, name in found:
                self._remember(self._runs, str(run_id), str(name))
        return {r: self._runs.get(r) for r in run_ids}

    def rollout_model(self, rollout_id: int) -> str | None:
        """The model of rollout ``rollout_id`` (None: no such rollout)."""
        if not -(2**63) <= rollout_id < 2**63:
            return None
        if rollout_id not in self._rollouts:
            from modelyard.rollout._schema import rollouts

            name = self._one(sa.select(rollouts.c.model_name).where(rollouts.c.id == rollout_id))
            self._remember(self._rollouts, rollout_id, name)
        return self._rollouts.get(rollout_id)

    def _one(self, query: Any) -> str | None:
        with self.ws.store.read() as conn:
            row = conn.execute(query).first()
        return str(row[0]) if row else None

    @staticmethod
    def _remember(cache: dict[Any, str | None], key: Any, name: str | None) -> None:
        if name is None:  # not stored yet: it may be created next, so look again next time
            return
        if len(cache) > _CACHE_MAX:
            cache.clear()
        cache[key] = name


def _pick(value: Any, parts: list[str]) -> list[Any]:
    """Values at a dotted path (``rows.0``: element 0 of every row), lists expanded."""
    if not parts:
        return list(value) if isinstance(value, list | tuple | set) else [value]
    if isinstance(value, list | set) or (isinstance(value, tuple) and not parts[0].isdigit()):
        return [v for item in value for v in _pick(item, parts)]
    head, rest = parts[0], parts[1:]
    if head.isdigit():
        try:
            return _pick(value[int(head)], rest)
        except (IndexError, TypeError, KeyError):
            return []
    return _pick(getattr(value, head, None), rest)


def scopes(spec: OpSpec, body: Any, names: ObjectNames) -> list[tuple[str | None, str | None]]:
    """The things the operation acts on, as ``(kind, name)`` for the role check (``(None, None)``:
    the global role). ``spec.on[1]`` may name several arguments, space-separated (``"rows.0 latest.0"``):
    the operation acts on everything any of them names, and the caller needs the role on each."""
    if spec.on is None:
        return [(None, None)]
    kind, args = spec.on
    picked: list[Any] = []
    for arg in args.split():
        parts = arg.split(".")
        picked.extend(_pick(getattr(body, parts[0], None), parts[1:]))
    if kind == "rollout":
        ids = {v for v in picked if isinstance(v, int) and not isinstance(v, bool)}
        # an unknown rollout: the global role decides (the operation then says it does not exist)
        return sorted({("model", names.rollout_model(v)) for v in ids}, key=str) or [(None, None)]
    values = {v for v in picked if isinstance(v, str)}
    if not values:
        return [(None, None)]
    if kind == "run":  # every distinct run of a batch, looked up in one query
        return sorted({("experiment", name) for name in names.many(values).values()}, key=str)
    return [(kind, v) for v in sorted(values)]
