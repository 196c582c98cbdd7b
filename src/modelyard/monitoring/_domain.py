"""Multivariate drift: can a classifier tell the reference rows from the current rows?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["domain_classifier_auc"]


def domain_classifier_auc(
    reference: Any,
    current: Any,
    features: Sequence[str],
    kinds: Mapping[str, str],
    *,
    threshold: float = 0.55,
    max_rows: int = 20_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Held-out ROC AUC of a gradient-boosted classifier separating the samples (0.5: identical).

    Up to ``max_rows`` rows per side are sampled; categorical columns are ordinal-encoded over
    both sides; missing values are left to the model. Drift when ``auc >= threshold``.
    """
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    if not features:
        return {"auc": None, "drifted": False, "threshold": threshold, "status": "no_columns"}
    rng = np.random.default_rng(seed)
    ref = reference[list(features)]
    cur = current[list(features)]
    if len(ref) > max_rows:
        ref = ref.iloc[np.sort(rng.choice(len(ref), max_rows, replace=False))]
    if len(cur) > max_rows:
        cur = cur.iloc[np.sort(rng.choice(len(cur), max_rows, replace=False))]
    if min(len(ref), len(cur)) < 20:
        return {"auc": None, "drifted": False, "threshold": threshold, "status": "too_few_rows"}
    both = pd.concat([ref, cur], ignore_index=True)
    cat_mask = []
    cols = []
    for name in features:
        s = both[name]
        if kinds.get(name) == "categorical":
            codes, _ = pd.factorize(s.astype("object"), use_na_sentinel=True)
            cols.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
            cat_mask.append(True)
        else:
            arr = np.array(pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))
            arr[~np.isfinite(arr)] = np.nan
            cols.append(arr)
            cat_mask.append(False)
    X = np.column_stack(cols)
    y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    clf = HistGradientBoostingClassifier(
        max_iter=50,
        early_stopping=False,
        categorical_features=np.array(cat_mask) if any(cat_mask) else None,
        random_state=seed,
    )
    from threadpoolctl import threadpool_limits

    # OpenMP threads spin badly on a busy machine; one thread is fast enough at <= 40k rows.
    with threadpool_limits(limits=1):
        clf.fit(X_tr, y_tr)
        auc = float(roc_auc_score(y_te, clf.predict_proba(X_te)[:, 1]))
    return {"auc": auc, "drifted": auc >= threshold, "threshold": threshold, "status": "ok", "rows": len(y)}
