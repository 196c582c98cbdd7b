"""Evaluation benchmark: metrics overall and per slice vs scikit-learn's own metric calls.

    python bench/evaluation.py [--rows 1000000] [--repeat 3]

A binary classifier's outputs on ``--rows`` rows (labels, predicted labels, scores with ties).
Metrics: accuracy, precision, recall, f1, roc_auc, log_loss — overall and for every slice.

- modelyard: ``prepare_targets`` (label encoding and checks) + ``slice_codes`` (factorizing the
  slice column) + ``compute_metrics`` (grouped kernels: one bincount for confusion counts, one
  score sort shared by every slice for ROC AUC).
- scikit-learn: the same six metric functions called on the whole arrays and on each slice's
  arrays. The slices' arrays are cut *before* the clock starts, so scikit-learn is timed on its
  metric calls alone (the comparison the issue asks for; it favours scikit-learn).

Two layouts: one slice column with 5 values ("5 slices", the issue's target ratio <= 1.3), and
5 slice columns of 4 values (20 slices). Best of ``--repeat``, the two sides interleaved. Results
are checked to agree to 1e-9 before any time is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]


def make(rows: int, columns: int, values: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, rows)
    score = np.round(
        np.clip(0.3 * y + 0.7 * rng.random(rows), 1e-6, 1 - 1e-6), 4
    )  # rounded: ties like real models
    pred = (score > 0.5).astype(np.int64)
    names = [f"region{i}" for i in range(values)]
    frame = pd.DataFrame({f"s{c}": rng.choice(names, rows) for c in range(columns)})
    return y, pred, score, frame


def ours(y, pred, score, frame):  # type: ignore[no-untyped-def]
    from modelyard.evaluation import compute_metrics, prepare_targets, slice_codes

    p = prepare_targets("binary", y, pred, score)
    slices = {}
    for col in frame.columns:
        name, codes, labels = slice_codes(frame, col)
        slices[name] = (codes, labels)
    return compute_metrics(p, METRICS, slices)


def sklearn_calls(parts):  # type: ignore[no-untyped-def]
    from sklearn import metrics as m

    out = []
    for y, pred, score in parts:
        out.append(
            {
                "accuracy": m.accuracy_score(y, pred),
                "precision": m.precision_score(y, pred, zero_division=0),
                "recall": m.recall_score(y, pred, zero_division=0),
                "f1": m.f1_score(y, pred, zero_division=0),
                "roc_auc": m.roc_auc_score(y, score),
                "log_loss": m.log_loss(y, score),
            }
        )
    return out


def run(rows: int, columns: int, values: int, repeat: int) -> tuple[float, float]:
    y, pred, score, frame = make(rows, columns, values)
    parts = [(y, pred, score)]
    for col in frame.columns:
        v = frame[col].to_numpy()
        for val in sorted(set(v)):
            mask = v == val
            parts.append((y[mask], pred[mask], score[mask]))
    # agree first
    mine = ours(y, pred, score, frame)
    ref = sklearn_calls(parts)
    mine_flat = [mine.overall] + [mine.slices[c][k] for c in frame.columns for k in sorted(mine.slices[c])]
    for a, b in zip(mine_flat, ref, strict=True):
        for k in METRICS:
            assert abs(a[k] - b[k]) < 1e-9, (k, a[k], b[k])
    t_ours, t_sk = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours(y, pred, score, frame)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sklearn_calls(parts)
        t_sk.append(time.perf_counter() - t0)
    return min(t_ours), min(t_sk)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import numpy
    import sklearn

    print(
        f"rows={args.rows:,}  metrics={','.join(METRICS)}  numpy {numpy.__version__}  scikit-learn "
        f"{sklearn.__version__}"
    )
    print(f"{'layout':<34}{'modelyard s':>12}{'sklearn s':>12}{'ratio':>8}")
    for label, cols, vals in (
        ("1 column x 5 values (5 slices)", 1, 5),
        ("5 columns x 4 values (20 slices)", 5, 4),
    ):
        a, b = run(args.rows, cols, vals, args.repeat)
        print(f"{label:<34}{a:>12.3f}{b:>12.3f}{a / b:>8.2f}")
    print("ratio = modelyard / scikit-learn (lower is better; target <= 1.3)")


if __name__ == "__main__":
    main()
