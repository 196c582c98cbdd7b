"""False alarms and detection of the inferred expectation suite and of ``yard.drift``, on random splits.

    python bench/validation.py                       # 200 splits per data set (the recorded figures)
    python bench/validation.py --splits 50 --only breast_cancer

For every data set (scikit-learn's bundled breast_cancer, wine, iris, diabetes, digits, and the
quickstart's generated churn data) and every seed: a random 30 % split (stratified on the target
for classifiers). The suite is inferred from the 70 % part's profile and the 30 % part is
validated against it; both parts come from the same distribution, so any failed check is a false
alarm. The same split is given to ``yard.drift(reference=train, current=test)`` (the defaults
``yard monitor`` uses, through a prepared :class:`DriftReference`); any drifted column is a false
alarm. A "replayed" row: 2,405 rows drawn with replacement from breast_cancer's 30 % part against
a 398-row reference (the monitoring traffic of the issue).

Detection: the same splits with one corruption injected into the 30 % part, in one column chosen
at random (seeded) among those it applies to; a run detects it when a check on that column fails
(for the rename: the column-present check of the old name). Corruptions:

- ``nulls``: 5 % of rows (at least one) of the column set to null;
- ``out_of_range``: 1 % of rows (at least one) of a numeric column set to ten times the largest
  absolute value the reference has in it (a slipped decimal point / unit error);
- ``sentinel``: 1 % of rows (at least one) of a numeric column set to -999;
- ``renamed``: the column renamed (``<name>_v2``);
- ``retyped``: a numeric column written as text;
- ``shifted``: a numeric column shifted by one reference standard deviation (rounded up for
  integer columns), every row;
- ``drift_shifted``: the same shift, detected by ``yard.drift`` (a drifted column).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

DATASETS = ("breast_cancer", "wine", "iris", "diabetes", "digits", "churn")
CORRUPTIONS = ("nulls", "out_of_range", "sentinel", "renamed", "retyped", "shifted", "drift_shifted")


def load(name: str) -> tuple[Any, str | None]:
    """(frame with the target as a column, the column to stratify on or None)."""
    if name == "churn":
        from modelyard.quickstart import _make_data

        return _make_data(7, 2000), "churned"
    import sklearn.datasets as ds

    frame = getattr(ds, f"load_{name}")(as_frame=True).frame
    return frame, (None if name == "diabetes" else "target")


def split(frame: Any, stratify: str | None, seed: int) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    strat = frame[stratify] if stratify else None
    train, test = train_test_split(frame, test_size=0.3, random_state=seed, stratify=strat)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def corrupt(kind: str, train: Any, test: Any, rng: Any) -> tuple[Any, str] | None:
    """The corrupted copy of ``test`` and the column hit (None when the kind fits no column)."""
    import numpy as np
    import pandas as pd

    numeric = [c for c in test.columns if pd.api.types.is_numeric_dtype(test[c]) and train[c].std() > 0]
    cols = numeric if kind not in ("nulls", "renamed") else list(test.columns)
    if not cols:
        return None
    col = cols[int(rng.integers(len(cols)))]
    out = test.copy()
    n = len(out)
    k = max(1, round(0.01 * n))
    rows = rng.choice(n, size=k, replace=False)
    if kind == "nulls":
        rows = rng.choice(n, size=max(1, round(0.05 * n)), replace=False)
        s = out[col].astype(float) if pd.api.types.is_numeric_dtype(out[col]) else out[col].astype(object)
        s.iloc[rows] = None
        out[col] = s
    elif kind == "out_of_range":
        big = float(np.abs(train[col]).max())
        v = 10 * big * (1 if float(train[col].max()) >= abs(float(train[col].min())) else -1)
        s = out[col].astype(float)
        s.iloc[rows] = v
        out[col] = s
    elif kind == "sentinel":
        s = out[col].astype(float)
        s.iloc[rows] = -999.0
        out[col] = s
    elif kind == "renamed":
        out = out.rename(columns={col: f"{col}_v2"})
    elif kind == "retyped":
        out[col] = out[col].astype(str)
    elif kind in ("shifted", "drift_shifted"):
        sd = float(train[col].std())
        if pd.api.types.is_integer_dtype(out[col]):
            out[col] = out[col] + int(np.ceil(sd))
        else:
            out[col] = out[col] + sd
    return out, col


def caught(report: Any, col: str, kind: str) -> bool:
    if kind == "drift_shifted":
        return bool(report.columns[col].drifted)
    return any(not r.ok and r.column == col for r in report.results)


def run(names: list[str], splits: int, detect_splits: int) -> None:
    import numpy as np

    import modelyard as yard
    from modelyard.data._expectations import infer_suite
    from modelyard.data._profile import iter_batches_of, profile_batches
    from modelyard.data._validate import validate
    from modelyard.monitoring._drift import DriftReference

    print(
        f"{'data set':<14} {'rows':>5} {'cols':>4}  {'suite: runs failing':>19} {'checks failed':>13}  "
        f"{'yard.drift: runs':>16} {'cols':>6}  {'monitor: runs':>13}"
    )
    totals = {"suite": [0, 0], "drift": [0, 0], "monitor": [0, 0]}
    detect: dict[str, list[int]] = {k: [0, 0] for k in CORRUPTIONS}
    misses: dict[str, list[str]] = {k: [] for k in CORRUPTIONS}
    t0 = time.perf_counter()
    for name in names:
        frame, strat = load(name)
        suite_fail = checks_failed = checks_total = drift_fail = drift_cols = mon_fail = 0
        examples: dict[str, int] = {}
        for seed in range(splits):
            train, test = split(frame, strat, seed)
            prof = profile_batches(iter_batches_of(train))
            suite = infer_suite(prof)
            rep = validate(test, suite=suite, reference=prof)
            bad = rep.failures
            checks_total += len(rep.results)
            checks_failed += len(bad)
            suite_fail += bool(bad)
            for r in bad:
                key = r.expectation
                examples[key] = examples.get(key, 0) + 1
            d = yard.drift(reference=train, current=test)
            drift_fail += bool(d.drifted_columns)
            drift_cols += len(d.drifted_columns)
            m = yard.drift(reference=DriftReference(train), current=test)
            mon_fail += bool(m.drifted_columns)
            if seed < detect_splits:
                rng = np.random.default_rng(1000 + seed)
                for kind in CORRUPTIONS:
                    got = corrupt(kind, train, test, rng)
                    if got is None:
                        continue
                    bad_test, col = got
                    if kind == "drift_shifted":
                        rep2: Any = yard.drift(reference=train, current=bad_test)
                    else:
                        rep2 = validate(bad_test, suite=suite, reference=prof)
                    ok = caught(rep2, col, kind)
                    detect[kind][0] += ok
                    detect[kind][1] += 1
                    if not ok and len(misses[kind]) < 5:
                        misses[kind].append(f"{name}/{col}#{seed}")
        totals["suite"][0] += suite_fail
        totals["suite"][1] += splits
        totals["drift"][0] += drift_fail
        totals["drift"][1] += splits
        totals["monitor"][0] += mon_fail
        totals["monitor"][1] += splits
        n_cols = len(frame.columns)
        print(
            f"{name:<14} {len(frame):>5} {n_cols:>4}  {suite_fail:>6}/{splits} ({suite_fail / splits:6.1%}) "
            f"{checks_failed:>6}/{checks_total:<7}  {drift_fail:>5}/{splits} ({drift_fail / splits:5.1%}) "
            f"{drift_cols:>6}  {mon_fail:>5}/{splits} ({mon_fail / splits:5.1%})"
            + (f"   failed: {', '.join(f'{k} {v}' for k, v in sorted(examples.items()))}" if examples else "")
        )
    for key, (f, n) in totals.items():
        print(f"false alarms, {key:<8}: {f}/{n} runs ({f / n:.2%}) with any failed check / drifted column")
    if "breast_cancer" in names:
        replay(splits)
    print("detection (runs where a check on the corrupted column failed):")
    for kind, (ok, n) in detect.items():
        if n:
            print(
                f"  {kind:<14} {ok}/{n} ({ok / n:.1%})"
                + (f"   missed e.g. {', '.join(misses[kind])}" if misses[kind] else "")
            )
    print(f"({time.perf_counter() - t0:.0f} s)")


def replay(splits: int) -> None:
    """398-row reference vs a 2,405-row window resampled from the 171 held-out rows (replayed traffic)."""
    import modelyard as yard
    from modelyard.monitoring._drift import DriftReference

    frame, strat = load("breast_cancer")
    fails = 0
    for seed in range(splits):
        train, test = split(frame, strat, seed)
        window = test.sample(2405, replace=True, random_state=seed).reset_index(drop=True)
        r = yard.drift(reference=DriftReference(train), current=window)
        fails += bool(r.drifted_columns)
    print(
        f"replayed traffic (breast_cancer, 398-row reference, 2,405-row window resampled from the 171 "
        f"held-out rows): {fails}/{splits} runs ({fails / splits:.1%}) with a drifted column"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--splits", type=int, default=200, help="random splits per data set (default 200)")
    ap.add_argument(
        "--detect-splits", type=int, default=50, help="of which this many get each corruption (default 50)"
    )
    ap.add_argument("--only", nargs="*", choices=DATASETS, help="data sets to run (default all)")
    ap.add_argument("--replay-only", action="store_true", help="only the replayed-traffic drift experiment")
    a = ap.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    if a.replay_only:
        replay(a.splits)
        return
    run(list(a.only or DATASETS), a.splits, min(a.detect_splits, a.splits))


if __name__ == "__main__":
    main()
