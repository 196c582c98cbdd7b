"""Running a gate policy: each gate gives pass/fail with the observed value, the bound and why."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from modelyard.errors import GateFailed, InvalidArgumentError, NotFoundError, did_you_mean
from modelyard.evaluation._evaluate import Evaluation, _evaluate_loaded, _features, split_label
from modelyard.evaluation._gate_report import GateReport, GateResult, GateStatus, report_from_dict
from modelyard.evaluation._metrics import METRICS
from modelyard.evaluation._policy import GatePolicy, load_policy, parse_policy
from modelyard.evaluation._sources import DataSource, ModelSource, load_data, load_dataset, load_model_ref

__all__ = ["GateFailed", "GateReport", "GateResult", "GateStatus", "report_from_dict", "run_gates"]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "NaN" if v != v else f"{v:.4g}"
    return str(v)


def _metric_gates(policy: GatePolicy, ev: Evaluation) -> list[GateResult]:
    out = []
    for name, bound in policy.metrics.items():
        value = ev.metrics.get(name, float("nan"))
        ok = bound.holds(value)
        why = f"{name} = {_fmt(value)} on {ev.n_rows} rows; required {bound.describe()}"
        if value != value:
            why = (
                f"{name} is undefined on this data (for example only one class present); required "
                f"{bound.describe()}"
            )
        out.append(
            GateResult(
                f"metrics.{name}",
                "metric",
                GateStatus.PASSED if ok else GateStatus.FAILED,
                value,
                bound.describe(),
                why,
            )
        )
    return out


def _slice_gates(policy: GatePolicy, ev: Evaluation) -> list[GateResult]:
    out = []
    for column, floor in policy.slices.items():
        groups = ev.slices.get(column, {})
        for name, bound in floor.bounds().items():
            judged, small, bad = [], [], []
            for value, stats in groups.items():
                if stats["n"] < floor.min_rows:
                    small.append(value)
                    continue
                v = stats.get(name, float("nan"))
                judged.append((value, v))
                if not bound.holds(v):
                    bad.append(f"{column}={value}: {_fmt(v)} (n={int(stats['n'])})")
            worst = None
            finite = [v for _, v in judged if v == v]
            if finite:
                worst = min(finite) if METRICS[name].greater_is_better else max(finite)
            skipped = (
                f"; {len(small)} slice(s) under min_rows={floor.min_rows} not judged: {', '.join(small)}"
                if small
                else ""
            )
            if not judged:
                status = GateStatus.FAILED
                why = (
                    f"no slice of {column!r} has at least min_rows={floor.min_rows} rows, so nothing "
                    f"was judged{skipped}"
                )
            elif bad:
                status = GateStatus.FAILED
                why = f"{len(bad)} of {len(judged)} slices below the floor: {'; '.join(bad)}{skipped}"
            else:
                status = GateStatus.PASSED
                why = (
                    f"all {len(judged)} slices of {column!r} meet {bound.describe()}; worst "
                    f"{_fmt(worst)}{skipped}"
                )
            out.append(GateResult(f"slices.{column}.{name}", "slice", status, worst, bound.describe(), why))
    return out


def _champion_gates(
    policy: GatePolicy,
    ms: ModelSource,
    ds: DataSource,
    ev: Evaluation,
    uri: Any,
    log: bool,
    allow_pickle: bool = False,
) -> tuple[list[GateResult], str | None, Evaluation | None]:
    champ = policy.champion
    assert champ is not None
    changes = champ.changes()
    if ms.name is None:
        raise InvalidArgumentError(
            f"{policy.where('champion')}: comparing with a champion needs a registered model "
            "(a reference such as 'churn-clf/8'), not an in-memory model."
        )
    from modelyard.registry import get_model_version

    try:
        holder = get_model_version(ms.name, champ.alias, uri=uri)
    except NotFoundError:
        holder = None
    if holder is None:
        status = GateStatus.WAIVED if champ.if_missing == "pass" else GateStatus.FAILED
        what = (
            "passed by policy (champion.if_missing: pass)"
            if champ.if_missing == "pass"
            else "failed by policy (champion.if_missing: fail)"
        )
        why = (
            f"no version of {ms.name!r} holds alias {champ.alias!r} yet (first model): comparison not "
            f"run, {what}"
        )
        return (
            [
                GateResult(f"champion.{n}", "champion", status, None, _change_bound(policy, n), why)
                for n in changes
            ],
            None,
            None,
        )
    champ_ref = f"{ms.name}/{holder.version}"
    if holder.version == ms.version:
        why = f"{champ_ref} already holds alias {champ.alias!r}: it is the champion, nothing to compare"
        return (
            [
                GateResult(f"champion.{n}", "champion", GateStatus.PASSED, 0.0, _change_bound(policy, n), why)
                for n in changes
            ],
            champ_ref,
            None,
        )
    champ_ms = load_model_ref(champ_ref, uri, allow_pickle=allow_pickle or policy.allow_pickle)
    champ_ev = _evaluate_loaded(
        champ_ms, ds, label=ev.label, slices=None, metrics=list(changes), task=ev.task
    )
    if log:
        from modelyard.evaluation._service import EvaluationService

        EvaluationService(uri).record_evaluation(champ_ev)
    out = []
    for name, change in changes.items():
        relative = champ.relative if change.relative is None else change.relative
        cand, base = ev.metrics.get(name, float("nan")), champ_ev.metrics.get(name, float("nan"))
        gib = METRICS[name].greater_is_better
        gain = (cand - base) if gib else (base - cand)  # > 0: the candidate is better
        if relative:
            gain = gain / abs(base) if base else (0.0 if gain == 0 else float("inf") * np.sign(gain))
        unit = "" if not relative else " (relative)"
        if change.max_drop is not None:
            ok = gain == gain and gain >= -change.max_drop
            rule = f"may drop at most {change.max_drop:g}{unit}"
        else:
            assert change.min_gain is not None
            ok = gain == gain and gain >= change.min_gain
            rule = f"must gain at least {change.min_gain:g}{unit}"
        better = "higher" if gib else "lower"
        why = (
            f"{name}: candidate {_fmt(cand)} vs champion {champ_ref} {_fmt(base)} ({better} is better): "
            f"change {gain:+.4g}{unit}; {rule}"
        )
        out.append(
            GateResult(
                f"champion.{name}",
                "champion",
                GateStatus.PASSED if ok else GateStatus.FAILED,
                float(gain),
                _change_bound(policy, name),
                why,
            )
        )
    return out, champ_ref, champ_ev


def _change_bound(policy: GatePolicy, name: str) -> str:
    assert policy.champion is not None
    c = policy.champion.changes()[name]
    relative = policy.champion.relative if c.relative is None else c.relative
    unit = " relative" if relative else ""
    return f"change >= -{c.max_drop:g}{unit}" if c.max_drop is not None else f"change >= {c.min_gain:g}{unit}"


def _latency_gates(policy: GatePolicy, ms: ModelSource, X: Any) -> list[GateResult]:
    lat = policy.latency
    assert lat is not None
    n = len(X)
    if n == 0:
        raise InvalidArgumentError(
            f"{policy.where('latency')}: the evaluation data has no rows to time predictions on."
        )
    rng = np.random.default_rng(0)
    starts = rng.integers(0, max(1, n - lat.batch + 1), lat.runs + lat.warmup)
    batches = [X.iloc[s : s + lat.batch] for s in starts]
    for b in batches[: lat.warmup]:
        ms.model.predict(b)
    times = []
    deadline = time.perf_counter() + lat.max_seconds
    for b in batches[lat.warmup :]:
        t = time.perf_counter()
        ms.model.predict(b)
        times.append((time.perf_counter() - t) * 1000)
        if time.perf_counter() > deadline and len(times) >= 5:
            break
    arr = np.asarray(times)
    out = []
    for q, bound in (("p50_ms", lat.p50_ms), ("p95_ms", lat.p95_ms), ("p99_ms", lat.p99_ms)):
        if bound is None:
            continue
        value = float(np.percentile(arr, float(q[1:3])))
        ok = bound.holds(value)
        why = (
            f"{q[:3]} of {len(arr)} predict() calls on batches of {lat.batch} row(s): {value:.3f} ms; "
            f"required {bound.describe()}"
        )
        out.append(
            GateResult(
                f"latency.{q}",
                "latency",
                GateStatus.PASSED if ok else GateStatus.FAILED,
                round(value, 4),
                bound.describe(),
                why,
            )
        )
    return out


def _score(model: Any, X: Any, task: str, output_class: str | None, classes: list[Any] | None) -> np.ndarray:
    X = _features(model, X)
    if task == "regression" or not hasattr(model, "predict_proba"):
        pred = np.asarray(model.predict(X))
        if task != "regression" and pred.dtype.kind not in "biuf":
            return pred  # labels: compare for equality
        return pred.astype(np.float64) if pred.dtype.kind in "biuf" else pred
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    if output_class is not None:
        labels = [str(c) for c in (classes or [])]
        if output_class not in labels:
            raise InvalidArgumentError(f"class {output_class!r} is not one of the model's classes {labels}.")
        return proba[:, labels.index(output_class)]
    return proba[:, -1] if task == "binary" else proba


def _changed(a: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    if a.dtype.kind in "f" and b.dtype.kind in "f":
        d = np.abs(a - b)
        over: np.ndarray = d.max(axis=1) > tol if d.ndim == 2 else d > tol
        return over
    differ: np.ndarray = a != b
    return differ


def _behavior_gates(policy: GatePolicy, ms: ModelSource, X: Any, ev: Evaluation) -> list[GateResult]:
    beh = policy.behavior
    assert beh is not None
    rng = np.random.default_rng(beh.seed)
    rows = X if len(X) <= beh.rows else X.iloc[np.sort(rng.choice(len(X), beh.rows, replace=False))]
    rows = rows.reset_index(drop=True)
    classes = ev.classes
    out = []

    def column(path: tuple[str, ...], name: str) -> Any:
        if name not in rows.columns:
            raise InvalidArgumentError(
                f"{policy.where(*path)}: column {name!r} is not in the evaluation data."
                f"{did_you_mean(name, map(str, rows.columns))}"
            )
        return rows[name]

    for i, inv in enumerate(beh.invariance):
        path = ("behavior", "invariance", str(i))
        col = column(path, inv.column)
        pert = rows.copy()
        if inv.perturb == "shuffle":
            pert[inv.column] = col.to_numpy()[rng.permutation(len(rows))]
            how = "shuffled"
        elif inv.perturb == "constant":
            pert[inv.column] = inv.value if inv.value is not None else col.iloc[0]
            how = f"set to {pert[inv.column].iloc[0]!r}"
        else:
            if not np.issubdtype(col.dtype, np.number):
                raise InvalidArgumentError(
                    f"{policy.where(*path, 'perturb')}: noise needs a numeric column; "
                    f"{inv.column!r} is {col.dtype}."
                )
            std = float(col.std()) or 1.0
            noisy = col.astype(np.float64) + rng.normal(0, inv.scale * std, len(col))
            pert[inv.column] = (
                noisy.round().astype(col.dtype) if np.issubdtype(col.dtype, np.integer) else noisy
            )
            how = f"given noise of {inv.scale:g} std"
        base = _score(ms.model, rows, ev.task, None, classes)
        after = _score(ms.model, pert, ev.task, None, classes)
        frac = float(_changed(base, after, inv.tolerance).mean())
        ok = frac <= inv.max_fraction
        why = (
            f"with {inv.column!r} {how}, {frac:.2%} of {len(rows)} predictions changed by more than "
            f"{inv.tolerance:g}; at most {inv.max_fraction:.2%} may"
        )
        out.append(
            GateResult(
                f"behavior.invariance.{inv.column}",
                "behavior",
                GateStatus.PASSED if ok else GateStatus.FAILED,
                frac,
                f"<= {inv.max_fraction:g}",
                why,
            )
        )

    for i, mono in enumerate(beh.monotonic):
        path = ("behavior", "monotonic", str(i))
        col = column(path, mono.column)
        if not np.issubdtype(col.dtype, np.number):
            raise InvalidArgumentError(
                f"{policy.where(*path, 'column')}: monotonicity needs a numeric column; "
                f"{mono.column!r} is {col.dtype}."
            )
        delta = mono.delta if mono.delta is not None else (float(col.std()) or 1.0)
        pert = rows.copy()
        shifted = col.astype(np.float64) + delta
        pert[mono.column] = (
            shifted.round().astype(col.dtype) if np.issubdtype(col.dtype, np.integer) else shifted
        )
        if ev.task == "multiclass" and mono.output_class is None:
            raise InvalidArgumentError(
                f"{policy.where(*path)}: a multiclass model needs 'class: <label>' to know which "
                f"score to watch."
            )
        base = _score(ms.model, rows, ev.task, mono.output_class, classes)
        after = _score(ms.model, pert, ev.task, mono.output_class, classes)
        if base.dtype.kind not in "f":
            raise InvalidArgumentError(
                f"{policy.where(*path)}: monotonicity needs scores (predict_proba) or a regression."
            )
        diff = after - base
        bad = diff < -mono.tolerance if mono.direction == "increasing" else diff > mono.tolerance
        frac = float(bad.mean())
        ok = frac <= mono.max_fraction
        why = (
            f"raising {mono.column!r} by {delta:g} moved the score against {mono.direction} for {frac:.2%} "
            f"of {len(rows)} rows; at most {mono.max_fraction:.2%} may"
        )
        out.append(
            GateResult(
                f"behavior.monotonic.{mono.column}",
                "behavior",
                GateStatus.PASSED if ok else GateStatus.FAILED,
                frac,
                f"<= {mono.max_fraction:g}",
                why,
            )
        )
    return out


def _data_gate(policy: GatePolicy, ds: DataSource, uri: Any) -> GateResult:
    suite = policy.data.suite
    assert suite is not None
    from modelyard.evaluation._sources import validate_frame

    if isinstance(suite, dict):
        checked: str | dict[str, Any] = suite
        suite = "the policy's inline suite"
    else:
        checked = policy.resolve_path(suite, "data", "suite")
    ok, n_checks, failures = validate_frame(ds.frame, checked, uri)
    if ok:
        why = f"{ds.label} passed all {n_checks} checks of {suite}"
    else:
        why = f"{ds.label} failed {len(failures)} of {n_checks} checks of {suite}: " + "; ".join(
            failures[:10]
        )
    return GateResult(
        "data.suite",
        "data",
        GateStatus.PASSED if ok else GateStatus.FAILED,
        f"{n_checks - len(failures)}/{n_checks}",
        f"all checks of {suite}",
        why,
    )


def run_gates(
    model: Any,
    policy: GatePolicy | str | os.PathLike[str],
    *,
    data: Any = None,
    log: bool = True,
    trigger: str = "gate",
    alias: str | None = None,
    reason: str | None = None,
    allow_pickle: bool = False,
    uri: Any = None,
) -> GateReport:
    """Run every gate of ``policy`` (a :class:`GatePolicy`, a YAML file path) on ``model``.

    ``data`` overrides the policy's ``data.dataset``. ``pyfunc`` (cloudpickle) versions load only
    with ``allow_pickle=True`` or ``allow_pickle: true`` in the policy (loading them runs code). The
    evaluation and the outcome are stored (linked to the model version) when the model is a
    registered version and ``log`` is true.
    """
    t0 = time.perf_counter()
    if isinstance(policy, str) and "\n" in policy:
        policy = parse_policy(policy)
    elif not isinstance(policy, GatePolicy):
        policy = load_policy(policy)
    allow_pickle = allow_pickle or policy.allow_pickle
    ms = load_model_ref(model, uri, allow_pickle=allow_pickle)
    report = GateReport(model=ms.label, policy=policy.source)
    needs_data = bool(
        policy.metrics
        or policy.champion
        or policy.slices
        or policy.latency
        or policy.behavior
        or policy.data.suite
    )
    if data is None and policy.data.dataset:
        data = policy.data.dataset if not policy.reads_files else policy.resolve_path(policy.data.dataset)
    if needs_data and data is None:
        raise InvalidArgumentError(
            f"{policy.source}: the policy names no evaluation data. Add 'data: {{dataset: "
            f"NAME@VERSION, label: COLUMN}}' "
            "to the policy, or pass data= (--data)."
        )
    if data is None:
        report.seconds = time.perf_counter() - t0
        return report
    if isinstance(data, str) and not policy.reads_files and data == policy.data.dataset:
        ds = load_dataset(data, uri, refuse=lambda: policy.files_refused("data", "dataset"))
    else:
        ds = load_data(data, uri)
    report.data = ds.label
    if policy.data.suite:
        report.results.append(_data_gate(policy, ds, uri))
    slices = list(dict.fromkeys([*policy.data.slices, *policy.slices]))
    ev = _evaluate_loaded(
        ms,
        ds,
        label=policy.data.label,
        slices=slices,
        metrics=None,
        task=policy.task,
        extra_metrics=policy.metric_names(),
        on_task=policy.check_task,
    )
    if log and ms.name is not None:
        from modelyard.evaluation._service import EvaluationService

        EvaluationService(uri).record_evaluation(ev)
    report.evaluation, report.evaluation_id = ev, ev.id
    report.results += _metric_gates(policy, ev)
    report.results += _slice_gates(policy, ev)
    if policy.champion is not None and policy.champion.changes():
        results, report.champion, _ = _champion_gates(policy, ms, ds, ev, uri, log, allow_pickle)
        report.results += results
    X, _, _ = split_label(ds.frame, ev.label)
    if policy.latency is not None:
        report.results += _latency_gates(policy, ms, _features(ms.model, X))
    if policy.behavior is not None:
        report.results += _behavior_gates(policy, ms, X, ev)
    report.seconds = time.perf_counter() - t0
    if log and ms.name is not None and ms.version is not None:
        from modelyard.evaluation._service import EvaluationService

        report.check_id = EvaluationService(uri).record_gate_check(
            model_name=ms.name,
            model_version=ms.version,
            policy_text=policy.text,
            policy_digest=policy.digest,
            passed=report.passed,
            results=[r.to_dict() for r in report.results],
            trigger=trigger,
            evaluation_id=ev.id,
            alias=alias,
            reason=reason,
        )
    return report
