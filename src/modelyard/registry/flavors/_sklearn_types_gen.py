"""Regenerate ``_sklearn_types.py``, the reviewed table of types a scikit-learn model may hold.

A development tool, not used at run time::

    python -m modelyard.registry.flavors._sklearn_types_gen > src/modelyard/registry/flavors/_sklearn_types.py

Then review the diff: every new name must be a class whose construction (``__new__`` plus
``__setstate__``/``__dict__`` update, as skops does it) runs no code of its own choosing. Functions
are never listed: a file that needs one is refused unless the caller passes ``trusted_types=``.

The table is built from

* estimators: ``sklearn.utils.all_estimators()`` (public estimator/transformer classes);
* fitted state: the classes fitted estimators keep in their attributes (trees, neighbor trees,
  distance metrics, losses, kernels, calibrators, optimizers, CV splitters, scorers), found by
  fitting every estimator with its defaults and listing what skops does not already trust;
* arrays and dtypes: ``numpy.ndarray``, ``numpy.dtype`` and its ``numpy.dtypes`` classes, the
  SciPy sparse matrix/array classes, ``scipy.interpolate.BSpline``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

__all__ = ["derive", "render"]

#: module → (base class name or None, explicit class names): the fitted-state classes, reviewed.
_FITTED_STATE: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "sklearn.tree._tree": (None, ("Tree",)),
    "sklearn.ensemble._hist_gradient_boosting.predictor": (None, ("TreePredictor",)),
    "sklearn.ensemble._hist_gradient_boosting.binning": (None, ("_BinMapper",)),
    "sklearn.neighbors._kd_tree": (None, ("KDTree",)),
    "sklearn.neighbors._ball_tree": (None, ("BallTree",)),
    # every distance metric except PyFuncDistance*, which calls a stored Python function
    "sklearn.metrics._dist_metrics": ("DistanceMetric", ()),
    "sklearn._loss.loss": ("BaseLoss", ()),
    "sklearn._loss.link": ("BaseLink", ("Interval",)),
    "sklearn.gaussian_process.kernels": ("Kernel", ("Hyperparameter",)),
    "sklearn.gaussian_process._gpc": (None, ("_BinaryGaussianProcessClassifierLaplace",)),
    "sklearn.calibration": (None, ("_CalibratedClassifier", "_SigmoidCalibration")),
    "sklearn.cluster._bisect_k_means": (None, ("_BisectingTree",)),
    "sklearn.neural_network._stochastic_optimizers": ("BaseOptimizer", ()),
    "sklearn.model_selection._split": ("BaseCrossValidator", ()),
    "sklearn.metrics._scorer": (None, ("_Scorer", "_PassthroughScorer", "_MultimetricScorer")),
    "sklearn.utils._bunch": (None, ("Bunch",)),
}
_SPLIT_EXTRA = (
    "ShuffleSplit",
    "StratifiedShuffleSplit",
    "GroupShuffleSplit",
    "RepeatedKFold",
    "RepeatedStratifiedKFold",
    "PredefinedSplit",
)


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def _estimators() -> list[str]:
    from sklearn.utils import all_estimators

    return sorted({_name(cls) for _, cls in all_estimators() if cls.__module__.startswith("sklearn.")})


def _fitted_state() -> list[str]:
    out: set[str] = set()
    for module, (base, names) in _FITTED_STATE.items():
        mod = importlib.import_module(module)
        for n in names:
            out.add(_name(getattr(mod, n)))
        if base is not None:
            base_cls = getattr(mod, base, None) or getattr(mod, base + "64")
            for _, cls in inspect.getmembers(mod, inspect.isclass):
                if (
                    cls.__module__ == module
                    and issubclass(cls, base_cls)
                    and not cls.__name__.startswith("PyFunc")
                    and not inspect.isabstract(cls)
                    and cls is not base_cls
                ):
                    out.add(_name(cls))
    split = importlib.import_module("sklearn.model_selection._split")
    out.update(_name(getattr(split, n)) for n in _SPLIT_EXTRA)
    return sorted(out)


def _arrays() -> list[str]:
    import numpy as np
    import scipy.interpolate
    import scipy.sparse

    out = {_name(np.ndarray), _name(np.dtype), _name(np.ma.MaskedArray), _name(scipy.interpolate.BSpline)}
    out.update(
        _name(getattr(np.dtypes, n)) for n in dir(np.dtypes) if isinstance(getattr(np.dtypes, n), type)
    )
    for n in scipy.sparse.__all__:
        cls = getattr(scipy.sparse, n)
        if (
            isinstance(cls, type)
            and issubclass(cls, (scipy.sparse.sparray, scipy.sparse.spmatrix))
            and n not in ("sparray", "spmatrix")
        ):
            out.add(_name(cls))
    return sorted(out)


def derive() -> dict[str, list[str]]:
    """The three sections of the table from the installed scikit-learn, NumPy and SciPy."""
    return {"ESTIMATOR_TYPES": _estimators(), "FITTED_STATE_TYPES": _fitted_state(), "ARRAY_TYPES": _arrays()}


def render(tables: dict[str, Any]) -> str:
    import numpy
    import scipy
    import sklearn

    lines = [
        '"""Types a scikit-learn (skops) model may instantiate without the caller trusting them: a '
        "reviewed table.",
        "",
        "GENERATED by ``python -m modelyard.registry.flavors._sklearn_types_gen``",
        f"(scikit-learn {sklearn.__version__}, NumPy {numpy.__version__}, SciPy {scipy.__version__}), "
        "then reviewed.",
        "Only classes; never a function. See ``_sklearn_types_gen.py`` for how each section is derived.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        '__all__ = ["ARRAY_TYPES", "ESTIMATOR_TYPES", "FITTED_STATE_TYPES", "TRUSTED_TYPES"]',
        "",
    ]
    for key, names in tables.items():
        lines.append(f"{key}: frozenset[str] = frozenset({{")
        lines.extend(f'    "{n}",' for n in names)
        lines.append("})")
        lines.append("")
    lines.append("TRUSTED_TYPES: frozenset[str] = ESTIMATOR_TYPES | FITTED_STATE_TYPES | ARRAY_TYPES")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - development tool
    import warnings

    warnings.simplefilter("ignore")
    sys.stdout.write(render(derive()))
