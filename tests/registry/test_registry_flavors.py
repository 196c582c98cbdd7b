"""Round trip of every flavor: predictions identical before and after, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

import modelyard as yard
from modelyard.errors import SerializationError


def _round_trip(workspace, model, X, **kw):  # type: ignore[no-untyped-def]
    with yard.start_run(experiment="flavors", uri=workspace) as run:
        mv = run.log_model(model, name="m", input_example=X[:5], **kw)
    return mv, yard.load_model(f"m/{mv.version}", uri=workspace)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda: __import__("sklearn.linear_model").linear_model.LogisticRegression(max_iter=500),
            id="logreg",
        ),
        pytest.param(
            lambda: __import__("sklearn.ensemble").ensemble.RandomForestClassifier(
                n_estimators=5, random_state=0
            ),
            id="forest",
        ),
    ],
)
def test_sklearn(workspace, churn_frame, make) -> None:  # type: ignore[no-untyped-def]
    X, y = churn_frame
    model = make().fit(X, y)
    mv, m = _round_trip(workspace, model, X)
    assert mv.flavor == m.flavor == "sklearn"
    np.testing.assert_array_equal(m.predict(X), model.predict(X))
    np.testing.assert_array_equal(m.predict_proba(X), model.predict_proba(X))


def test_sklearn_pipeline_with_strings(workspace, churn_frame) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = churn_frame
    X = X.assign(plan=np.where(X["tenure"] > 30, "pro", "basic"))
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(), ["plan"]), (StandardScaler(), ["tenure", "monthly", "calls"])
        ),
        LogisticRegression(),
    ).fit(X, y)
    mv, m = _round_trip(workspace, model, X)
    assert [c.dtype for c in mv.signature.inputs][-1] == "string"
    np.testing.assert_array_equal(m.predict(X), model.predict(X))


def test_xgboost(workspace, churn_frame) -> None:
    import xgboost

    X, y = churn_frame
    model = xgboost.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1).fit(X, y)
    mv, m = _round_trip(workspace, model, X)
    assert mv.flavor == "xgboost" and "xgboost" in mv.requirements
    np.testing.assert_array_equal(m.predict(X), model.predict(X))
    np.testing.assert_array_equal(m.predict_proba(X), model.predict_proba(X))


def test_lightgbm(workspace, churn_frame) -> None:
    import lightgbm

    X, y = churn_frame
    model = lightgbm.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1, n_jobs=1).fit(X, y)
    mv, m = _round_trip(workspace, model, X)
    assert mv.flavor == "lightgbm"
    np.testing.assert_array_equal(m.predict(X), model.predict(X))
    np.testing.assert_allclose(m.predict_proba(X), model.predict_proba(X), rtol=0, atol=0)
    reg = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1, n_jobs=1).fit(X, y.astype(float))
    _, m2 = _round_trip(workspace, reg, X)
    np.testing.assert_array_equal(m2.predict(X), reg.predict(X))
    with pytest.raises(AttributeError, match="has no predict_proba"):
        m2.predict_proba(X)


def test_onnx(workspace, churn_frame) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = churn_frame
    Xf = X.astype("float32")
    sk = LogisticRegression(max_iter=500).fit(Xf.to_numpy(), y)
    onx = to_onnx(sk, Xf.to_numpy()[:1], options={"zipmap": False})
    import onnxruntime as ort

    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = sess.run(None, {sess.get_inputs()[0].name: Xf.to_numpy()})
    mv, m = _round_trip(workspace, onx, Xf)
    assert mv.flavor == "onnx"
    np.testing.assert_array_equal(m.predict(Xf), expected[0])
    np.testing.assert_array_equal(m.predict_proba(Xf), expected[1])
    # int columns are cast safely to the float32 the signature records
    Xi = X.round().astype("int64")
    want = sess.run(None, {sess.get_inputs()[0].name: Xi.astype("float32").to_numpy()})[0]
    np.testing.assert_array_equal(m.predict(Xi), want)


class EchoModel:
    """A custom model for the pyfunc flavor."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict(self, df):  # type: ignore[no-untyped-def]
        return df["monthly"].to_numpy() * self.factor


def test_pyfunc_only_when_named_and_loads_only_with_allow_pickle(workspace, churn_frame) -> None:
    X, _ = churn_frame
    model = EchoModel(2.0)
    with yard.start_run(experiment="flavors", uri=workspace) as run:
        mv = run.log_model(model, name="custom", input_example=X[:5], flavor="pyfunc")
    with pytest.raises(
        SerializationError,
        match=r"Refusing to load model custom/1: it is a pyfunc model, and loading "
        r"it unpickles it, which runs code from the store\. .*pass allow_pickle=True to load_model",
    ):
        yard.load_model(f"custom/{mv.version}", uri=workspace)
    m = yard.load_model(f"custom/{mv.version}", uri=workspace, allow_pickle=True)
    np.testing.assert_array_equal(m.predict(X), model.predict(X))


_HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.skipif(
    not _HAS_TORCH, reason="torch is not installed (pip install 'modelyard[torch]' or torch==2.13.0)"
)
@pytest.mark.parametrize("fmt", ["torchscript", "state_dict"])
def test_torch(workspace, churn_frame, fmt) -> None:  # type: ignore[no-untyped-def]
    import torch
    from tests.registry.torch_models import TinyNet

    X, _ = churn_frame
    torch.manual_seed(0)
    net = TinyNet(3, 2).eval()
    with torch.no_grad():
        expected = net(torch.tensor(X.to_numpy(), dtype=torch.float32)).numpy()
    kw = {"torch_format": fmt}
    if fmt == "state_dict":
        kw["init_kwargs"] = {"n_in": 3, "n_out": 2}
    with yard.start_run(experiment="flavors", uri=workspace) as run:
        mv = run.log_model(net, name="m", input_example=X[:5], **kw)
    m = yard.load_model(
        f"m/{mv.version}", uri=workspace, model_class=TinyNet if fmt == "state_dict" else None
    )
    assert mv.flavor == "torch"
    out = m.predict(X)
    # two outputs: a DataFrame with the signature's output columns
    assert list(out.columns) == ["0", "1"]
    np.testing.assert_array_equal(out.to_numpy(), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error", yard.registry.RequirementsMismatchWarning)
        warnings.simplefilter("error", DeprecationWarning)
        # no requirement warning in the same environment
        yard.load_model(
            f"m/{mv.version}", uri=workspace, model_class=TinyNet if fmt == "state_dict" else None
        )
