"""Monitoring a served model: windows of the prediction log vs a stored reference, feedback labels,
window performance, stored runs/results, alert evaluation and Prometheus gauges."""

from __future__ import annotations

import hashlib
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard._shared import now_ms, parse_duration_ms
from modelyard._workspace import Workspace, get_workspace
from modelyard.errors import InvalidArgumentError, NotFoundError
from modelyard.monitoring._drift import DriftReference
from modelyard.monitoring._report import DriftReport
from modelyard.monitoring._store import MonitoringService, MonitorRun, WindowValue
from modelyard.serving._predlog import features_and_outputs, output_columns, read_window

__all__ = ["Monitor", "WindowResult", "ingest_feedback", "performance"]

_CLASSIFICATION = ("accuracy", "f1", "auc")
_REGRESSION = ("mae", "rmse")


# -- feedback -----------------------------------------------------------------------------------
def ingest_feedback(
    source: str | os.PathLike[str] | Any,
    *,
    id_column: str = "request_id",
    label_column: str = "label",
    uri: str | os.PathLike[str] | Workspace | None = None,
) -> int:
    """Store delayed labels (a Parquet/CSV file or a DataFrame), keyed by request id; returns the count.

    A later label for the same request id replaces the earlier one.
    """
    import pandas as pd

    ws = get_workspace(uri)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidArgumentError(f"The feedback file {str(path)!r} does not exist.")
        df = pd.read_csv(path) if path.suffix.lower() in (".csv", ".txt") else pd.read_parquet(path)
    else:
        df = source
    for col, opt in ((id_column, "--id-column"), (label_column, "--label-column")):
        if col not in df.columns:
            from modelyard.errors import did_you_mean

            raise InvalidArgumentError(
                f"The feedback has no column {col!r}.{did_you_mean(col, map(str, df.columns))} "
                f"Columns: {', '.join(map(str, df.columns))}. Choose it with {opt}."
            )
    df = df[[id_column, label_column]].dropna()
    df = df.drop_duplicates(subset=id_column, keep="last")
    labels = {
        str(rid): _py(v) for rid, v in zip(df[id_column].tolist(), df[label_column].tolist(), strict=True)
    }
    svc = MonitoringService(ws)
    items = list(labels.items())
    for i in range(0, len(items), 50_000):  # one request per 50,000 labels
        svc.record_feedback(dict(items[i : i + 50_000]))
    return len(labels)


def _py(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return v


def _labels_for(ws: Workspace, request_ids: list[str]) -> dict[str, Any]:
    svc = MonitoringService(ws)
    out: dict[str, Any] = {}
    for i in range(0, len(request_ids), 50_000):
        out.update(svc.labels_for(request_ids[i : i + 50_000]))
    return out


def performance(
    y_true: Any, y_pred: Any, y_score: Any = None, *, task: str | None = None
) -> dict[str, float]:
    """accuracy/F1/AUC (classification) or MAE/RMSE (regression) of labelled predictions."""
    import numpy as np
    from sklearn import metrics

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if len(y_true) == 0:
        return {}
    if task is None:
        is_float = np.issubdtype(y_true.dtype, np.floating) and not np.all(np.mod(y_true, 1) == 0)
        task = "regression" if is_float or len(np.unique(y_true)) > 20 else "classification"
    if task == "regression":
        err = y_pred.astype(float) - y_true.astype(float)
        return {"mae": float(np.mean(np.abs(err))), "rmse": float(math.sqrt(np.mean(err**2)))}
    out = {"accuracy": float(metrics.accuracy_score(y_true, y_pred))}
    labels = np.unique(np.concatenate([y_true, y_pred]))
    avg = "binary" if len(labels) <= 2 and set(labels.tolist()) <= {0, 1} else "macro"
    out["f1"] = float(metrics.f1_score(y_true, y_pred, average=avg, zero_division=0))
    if y_score is not None and len(np.unique(y_true)) == 2:
        out["auc"] = float(metrics.roc_auc_score(y_true, np.asarray(y_score, dtype=float)))
    return out


# -- a monitoring window ------------------------------------------------------------------------
@dataclass
class WindowResult:
    """One evaluated window of traffic."""

    model_name: str
    start_ms: int
    end_ms: int
    rows: int
    report: DriftReport | None
    reference: str | None
    stats: dict[str, float | None] = field(default_factory=dict)  # rows, latency, fallback, performance
    model_metrics: dict[str, float] = field(default_factory=dict)
    run_id: int | None = None

    def metric(self, name: str, column: str | None = None) -> float | None:
        """The value of an alert metric (see ``modelyard.monitoring._alerts.METRICS``)."""
        r = self.report
        if name == "share_drifted":
            return r.share_drifted if r else None
        if name == "dataset_drift":
            return float(r.dataset_drift) if r else None
        if name in ("drift_score", "null_share"):
            if not r or column not in r.columns:
                return None
            c = r.columns[column]
            return c.score if name == "drift_score" else c.null_share_current
        if name == "prediction_drift_score":
            preds = [
                c for c in (r.columns.values() if r else []) if c.is_prediction and c.effect_size is not None
            ]
            return max((c.score for c in preds), default=None)
        for base, kind in (
            ("accuracy", "drop"),
            ("f1", "drop"),
            ("auc", "drop"),
            ("mae", "increase"),
            ("rmse", "increase"),
        ):
            if name == f"{base}_{kind}":
                w, m = self.stats.get(base), self.model_metrics.get(base)
                if w is None or m is None:
                    return None
                return (m - w) if kind == "drop" else (w - m)
        return self.stats.get(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "window_start_ms": self.start_ms,
            "window_end_ms": self.end_ms,
            "rows": self.rows,
            "reference": self.reference,
            "stats": self.stats,
            "model_metrics": self.model_metrics,
            "run_id": self.run_id,
            "drift": self.report.to_dict(histograms=False) if self.report else None,
        }


class Monitor:
    """Monitoring of one served model over its prediction log.

    ``Monitor("churn-clf").report("1h", reference="churn-train@v3")`` → :class:`WindowResult`.
    """

    def __init__(
        self, model_name: str, *, uri: str | os.PathLike[str] | Workspace | None = None, **drift_options: Any
    ) -> None:
        self.model_name = model_name
        self.ws = get_workspace(uri)
        self.drift_options = drift_options
        self._reference_cache: dict[str, tuple[str, Any]] = {}
        self._prepared: dict[str, DriftReference] = {}  # sorted/counted once, reused every window

    # -- reference --------------------------------------------------------------------------
    def reference(self, reference: str | None = None) -> tuple[str, Any]:
        """(label, frame) of the reference: a file, a dataset ref, or the training data by lineage.

        The frame is stored once per (model, reference) as Parquet in the blob store and reused.
        """
        key = reference or ""
        if key in self._reference_cache:
            return self._reference_cache[key]
        label, loader = self._resolve_reference(reference)
        frame = self._stored_reference(label)
        if frame is None:
            frame = loader()
            self._store_reference(label, frame)
        self._reference_cache[key] = (label, frame)
        return label, frame

    def _resolve_reference(self, reference: str | None) -> tuple[str, Any]:
        import pandas as pd

        if reference is None:
            from modelyard.monitoring._lineage import training_dataset

            try:
                reference = training_dataset(self.ws, self.model_name)
            except NotFoundError as exc:
                if "--reference" in str(exc):
                    raise
                raise NotFoundError(
                    f"{exc} Without a registered model there is no training data to compare with: "
                    "pass --reference name@vN (or a Parquet/CSV file)."
                ) from None
        path = Path(reference)
        if path.is_file():
            digest = hashlib.blake2b(path.read_bytes(), digest_size=8).hexdigest()
            label = f"file:{path.resolve()}#{digest}"
            if path.suffix.lower() in (".csv", ".txt"):
                return label, lambda: pd.read_csv(path)
            return label, lambda: pd.read_parquet(path)
        if reference.lower().endswith((".parquet", ".csv", ".pq")):
            raise InvalidArgumentError(f"The reference file {reference!r} does not exist.")
        from modelyard.data._service import DataService

        svc = DataService(self.ws)
        dv = svc.resolve(reference)
        return f"dataset:{dv.name}@v{dv.version}", lambda: _to_pandas(svc.load(dv))

    def _stored_reference(self, label: str) -> Any:
        import pandas as pd

        digest = MonitoringService(self.ws).reference_digest(self.model_name, label)
        if digest is None:
            return None
        return pd.read_parquet(io.BytesIO(self.ws.blobs.read_bytes(digest)))

    def _store_reference(self, label: str, frame: Any) -> None:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        digest = self.ws.blobs.put_bytes(buf.getvalue())
        MonitoringService(self.ws).record_reference(
            self.model_name, label, digest, len(frame), [str(c) for c in frame.columns]
        )

    # -- one window --------------------------------------------------------------------------
    def report(
        self,
        window: str | int = "1h",
        *,
        reference: str | None = None,
        end_ms: int | None = None,
        store: bool = True,
        label_column: str | None = None,
    ) -> WindowResult:
        """Drift, serving stats and performance of the last ``window`` of logged predictions."""
        import numpy as np

        from modelyard.monitoring._drift import drift

        width = parse_duration_ms(window, what="The window")
        end = end_ms if end_ms is not None else now_ms()
        start = end - width
        logged = read_window(self.ws, self.model_name, start, end)
        ref_label, ref = self.reference(reference)
        current, outputs = features_and_outputs(logged)
        stats: dict[str, float | None] = {"rows": float(len(logged))}
        if len(logged):
            if "latency_ms" in logged:
                stats["latency_p95_ms"] = float(np.nanpercentile(logged["latency_ms"].to_numpy(float), 95))
            if "fallback" in logged:
                stats["fallback_rate"] = float(logged["fallback"].astype(float).mean())
        columns = [c for c in current.columns if c not in outputs]
        version = None
        if len(logged) and "model_version" in logged:
            version = str(logged["model_version"].iloc[-1])
        if outputs and version and any(o not in ref.columns for o in outputs):
            key = f"{ref_label}|{version}"
            if key not in self._prepared:
                self._prepared[key] = DriftReference(self._with_predictions(ref_label, ref, version, columns))
            prepared = self._prepared[key]
        else:
            if ref_label not in self._prepared:
                self._prepared[ref_label] = DriftReference(ref)
            prepared = self._prepared[ref_label]
        ref = prepared.frame
        extra = [c for c in ref.columns if c not in columns and c not in outputs and c != label_column]
        # reference columns the model was not sent (e.g. the label) are not compared
        report = drift(
            prepared,
            current,
            columns=columns if columns else list(ref.columns),
            prediction=[o for o in outputs if o in ref.columns] or None,
            **self.drift_options,
        )
        report.title = f"{self.model_name}: last {window} vs {ref_label.split('#')[0]}"
        report.settings["ignored_reference_columns"] = extra
        for o in outputs:
            if o not in ref.columns:
                report.settings.setdefault("outputs_without_reference", []).append(o)
        stats.update(self._window_performance(logged, outputs))
        model_metrics = {}
        try:
            from modelyard.monitoring._lineage import model_version_metrics

            model_metrics = model_version_metrics(self.ws, self.model_name, version)
        except Exception:
            model_metrics = {}
        result = WindowResult(
            self.model_name, start, end, len(logged), report, ref_label, stats, model_metrics
        )
        report.history = [*self.history(limit=30), {"time_ms": end, "share_drifted": report.share_drifted}]
        if store:
            result.run_id = self._store_run(result, version)
        return result

    def _with_predictions(self, ref_label: str, ref: Any, version: str, columns: list[str]) -> Any:
        """The reference plus the model version's outputs on it (for prediction drift), stored once."""
        import logging

        import pandas as pd

        label = f"{ref_label}|outputs:{self.model_name}/{version}"
        preds = self._stored_reference(label)
        if preds is None:
            try:
                from modelyard.registry._api import load_model

                model = load_model(f"{self.model_name}/{version}", uri=self.ws)
                inputs = ref[[c for c in columns if c in ref.columns]]
                try:
                    out = model.predict(inputs)
                except Exception:
                    sig = getattr(model, "signature", None)
                    names = [c.name for c in getattr(sig, "inputs", None) or []] if sig else []
                    if not names:
                        raise
                    out = model.predict(ref[names])
                preds = pd.DataFrame(output_columns(out, len(ref)))
            except Exception as exc:
                logging.getLogger("modelyard.monitoring").warning(
                    "no prediction drift for %s/%s: the reference could not be scored (%s)",
                    self.model_name,
                    version,
                    exc,
                )
                return ref
            self._store_reference(label, preds)
        return pd.concat([ref.reset_index(drop=True), preds.reset_index(drop=True)], axis=1)

    def _window_performance(self, logged: Any, outputs: list[str]) -> dict[str, float | None]:
        if not len(logged) or "request_id" not in logged or not outputs:
            return {"labelled_rows": 0.0}
        ids = logged["request_id"].astype(str).tolist()
        labels = _labels_for(self.ws, ids)
        if not labels:
            return {"labelled_rows": 0.0}
        mask = [rid in labels for rid in ids]
        sub = logged[mask]
        y_true = [labels[r] for r in sub["request_id"].astype(str)]
        import numpy as np

        # the prediction: "output", else "output.label"; a score from "output.proba"/"output.score"
        out_col = (
            "output" if "output" in outputs else ("output.label" if "output.label" in sub else outputs[0])
        )
        y_pred = sub[out_col].to_numpy()
        score = next(
            (sub[c].to_numpy() for c in ("output.proba", "output.probability", "output.score") if c in sub),
            None,
        )
        y_true_arr = np.asarray(y_true)
        if (
            y_pred.dtype.kind == "f"
            and y_true_arr.dtype.kind in "iub"
            and np.all((y_pred >= 0) & (y_pred <= 1))
            and not np.all(np.mod(y_pred, 1) == 0)
        ):
            score, y_pred = y_pred, (y_pred >= 0.5).astype(int)  # a probability output
        res: dict[str, float | None] = dict(performance(y_true_arr, y_pred, score))
        res["labelled_rows"] = float(len(sub))
        return res

    def _store_run(self, result: WindowResult, version: str | None) -> int:
        report = result.report
        digest = self.ws.blobs.put_bytes(report.to_json(indent=None).encode()) if report else None
        values = [WindowValue(k, "", v) for k, v in result.stats.items() if v is not None]
        if report:
            values.append(WindowValue("share_drifted", "", report.share_drifted))
            values += [
                WindowValue("drift_score", c.name, c.score)
                for c in report.columns.values()
                if c.effect_size is not None
            ]
        run = MonitorRun(
            model_name=self.model_name,
            model_version=version,
            window_start=result.start_ms,
            window_end=result.end_ms,
            rows=result.rows,
            reference=result.reference,
            share_drifted=report.share_drifted if report else None,
            dataset_drift=report.dataset_drift if report else None,
            report_digest=digest,
        )
        return MonitoringService(self.ws).record_run(run, values)

    def history(self, limit: int = 30) -> list[dict[str, Any]]:
        """Earlier windows of this model, oldest first: time and share of drifted columns."""
        return MonitoringService(self.ws).history(self.model_name, limit)


def _to_pandas(obj: Any) -> Any:
    if hasattr(obj, "to_pandas"):
        return obj.to_pandas()
    return obj
