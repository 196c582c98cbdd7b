"""Trust: nothing stored chooses code to run when a model is loaded (issue 12).

Each test builds a model package the way an attacker with write access to the store could, loads
it the way users and ``yard serve`` do, and checks the refusal, its message, and that the payload's
marker file never appears.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pickle
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

import modelyard as yard
from modelyard.errors import SerializationError
from modelyard.registry.flavors._sklearn_types import (
    ARRAY_TYPES,
    ESTIMATOR_TYPES,
    FITTED_STATE_TYPES,
    TRUSTED_TYPES,
)
from testkit.registry import Boom, inject_model

# -- scikit-learn (skops) ---------------------------------------------------------------------------
GADGET = ["numpy.full_like", "numpy.take", "numpy.testing._private.utils.runstring"]


def _gadget_model(marker: Path):  # type: ignore[no-untyped-def]
    """A pipeline made only of names under ``numpy.``: its transform execs a string that writes ``marker``."""
    from numpy.testing._private.utils import runstring
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return make_pipeline(
        FunctionTransformer(np.full_like, kw_args={"fill_value": code, "dtype": "U300", "shape": (1,)}),
        FunctionTransformer(np.take, kw_args={"indices": 0}),
        FunctionTransformer(runstring, kw_args={"dict": {}}),
    ).fit(np.zeros((2, 2)))


def _skops_gadget(marker: Path) -> bytes:
    from modelyard.registry.flavors.sklearn import _skops_io

    return _skops_io().dumps(_gadget_model(marker))


def test_skops_gadget_under_numpy_is_refused_and_its_payload_never_runs(workspace, tmp_path) -> None:
    marker = tmp_path / "marker"
    with pytest.raises(
        SerializationError,
        match=r"types and functions that modelyard does not trust by default: "
        r"\['numpy\.full_like', 'numpy\.take', 'numpy\.testing\._private\.utils\.runstring'\]\. "
        r"Inspect them .* pass trusted_types=\[.*\] to log_model \(and the same to load_model\)\.",
    ):
        yard.registry.register_model(_gadget_model(marker), "evil", uri=workspace)
    ref = inject_model(workspace, {"model.skops": _skops_gadget(marker)}, flavor="sklearn").ref
    msg = (
        r"Refusing to load model\.skops: it would instantiate untrusted types "
        r"\['numpy\.full_like', 'numpy\.take', 'numpy\.testing\._private\.utils\.runstring'\]\. "
        r"Inspect them \(a "
        r"function can run any code when the model predicts\); if you trust the model's author, pass "
        r"trusted_types=\['numpy\.full_like', .*\] to load_model\(\)\."
    )
    with pytest.raises(SerializationError, match=msg):
        yard.load_model(ref, uri=workspace)
    assert not marker.exists()
    # The control: the file is a real attack. Trusting its functions explicitly loads it, and using it runs
    # code.
    m = yard.load_model(ref, uri=workspace, trusted_types=GADGET)
    m.raw.transform(np.zeros((2, 2)))
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize(
    "target",
    [
        ("savetxt", "numpy"),  # writes any file
        ("assert_run_python_script_without_output", "sklearn.utils._testing"),  # runs a Python script
        ("_CVIterableWrapper", "sklearn.utils._testing"),  # a name the table trusts, in another module
    ],
)
def test_skops_schema_edited_to_reference_a_dangerous_name_is_refused(workspace, tmp_path, target) -> None:
    from sklearn.preprocessing import FunctionTransformer

    from modelyard.registry.flavors.sklearn import _skops_io

    sio = _skops_io()
    data = sio.dumps(FunctionTransformer(np.log1p).fit(np.ones((3, 2))))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    schema = members["schema.json"].decode()
    fn, module = target
    edited = schema.replace(
        '"__class__": "log1p",\n        "__module__": "numpy"',
        f'"__class__": "{fn}",\n        "__module__": "{module}"',
    )
    assert edited != schema
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in {**members, "schema.json": edited.encode()}.items():
            z.writestr(n, b)
    ref = inject_model(workspace, {"model.skops": buf.getvalue()}, flavor="sklearn").ref
    with pytest.raises(
        SerializationError,
        match=rf"Refusing to load model\.skops: it would instantiate untrusted types "
        rf"\['{module}\.{fn}'\]\. Inspect them .* pass trusted_types=\['{module}\.{fn}'\]",
    ):
        yard.load_model(ref, uri=workspace)


def test_yard_serve_refuses_the_skops_gadget(workspace, tmp_path) -> None:
    from modelyard.serving import ModelServer
    from modelyard.serving._app import SwapError

    marker = tmp_path / "marker"
    ref = inject_model(workspace, {"model.skops": _skops_gadget(marker)}, flavor="sklearn").ref
    with pytest.raises(
        SwapError,
        match=r"The new spec was not applied: Refusing to load model\.skops: it would "
        r"instantiate untrusted types \['numpy\.full_like', 'numpy\.take', "
        r"'numpy\.testing\._private\.utils\.runstring'\]",
    ):
        ModelServer({"models": {"primary": ref}}, uri=workspace.location.uri, prediction_log=False).start()
    assert not marker.exists()


def test_common_models_load_without_trusted_types(workspace) -> None:
    """The reviewed table covers what ordinary fitted models hold (trees, neighbor trees, scorers...)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    for i, model in enumerate(
        [
            RandomForestClassifier(n_estimators=3, random_state=0),
            HistGradientBoostingClassifier(max_iter=3),
            make_pipeline(StandardScaler(), KNeighborsClassifier()),
            GridSearchCV(KNeighborsClassifier(), {"n_neighbors": [3, 5]}, cv=2),
        ]
    ):
        model.fit(X, y)
        yard.registry.register_model(model, f"ok{i}", uri=workspace)
        m = yard.load_model(f"ok{i}/1", uri=workspace)
        np.testing.assert_array_equal(m.predict(X), model.predict(X))


def _resolve(name: str) -> object:
    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError:  # a class whose defining module is reached through its package
        parent, _, sub = module.rpartition(".")
        return getattr(getattr(importlib.import_module(parent), sub), attr)


def test_trusted_type_table_holds_only_reviewed_classes_and_no_function() -> None:
    from sklearn.base import BaseEstimator

    assert TRUSTED_TYPES == ESTIMATOR_TYPES | FITTED_STATE_TYPES | ARRAY_TYPES
    assert len(ESTIMATOR_TYPES) > 150
    problems = []
    for name in sorted(TRUSTED_TYPES):
        obj = _resolve(name)
        if not isinstance(obj, type):
            problems.append(f"{name} is not a class ({type(obj).__name__})")
            continue
        if f"{obj.__module__}.{obj.__name__}" != name:
            problems.append(f"{name} resolves to {obj.__module__}.{obj.__name__}")
        if any(part in ("testing", "_testing", "tests") for part in name.split(".")):
            problems.append(f"{name} is a testing helper")
        if "PyFunc" in name:
            problems.append(f"{name} calls a stored Python function")
        if name in ESTIMATOR_TYPES and not (issubclass(obj, BaseEstimator) and not inspect.isabstract(obj)):
            problems.append(f"{name} is not a concrete scikit-learn estimator")
    for obj in (np.savetxt, np.testing.assert_equal, np.full_like, np.take):  # functions are never trusted
        assert f"{obj.__module__}.{obj.__name__}" not in TRUSTED_TYPES
    assert not [
        t
        for t in TRUSTED_TYPES
        if isinstance(_resolve(t), types.FunctionType | types.BuiltinFunctionType | np.ufunc)
    ]
    assert problems == []


# -- PyTorch state dicts ------------------------------------------------------------------------------
def _state_dict_files() -> dict[str, bytes]:
    import torch
    from safetensors.torch import save as st_save

    return {"model.safetensors": st_save({"w": torch.zeros(1)})}


def test_torch_state_dict_never_imports_the_stored_class(workspace, tmp_path) -> None:
    marker = tmp_path / "marker"
    ref = inject_model(
        workspace,
        _state_dict_files(),
        flavor="torch",
        options={
            "format": "state_dict",
            "class": "subprocess:run",
            "init_kwargs": {"args": ["touch", str(marker)]},
        },
    ).ref
    with pytest.raises(
        SerializationError,
        match=r"This PyTorch model is a state dict saved from class subprocess:run; "
        r"modelyard never imports or calls a class named by a stored file\. Pass the class to "
        r"load_model\(\.\.\., model_class=YourNet\), or register it in code with "
        r"modelyard\.registry\.register_torch_class\(YourNet\)\.",
    ):
        yard.load_model(ref, uri=workspace)
    assert not marker.exists()
    # registering a class in code trusts that class, not the names files give
    import subprocess

    with pytest.raises(SerializationError, match=r"must be a torch\.nn\.Module subclass\. Got <function run"):
        yard.load_model(ref, uri=workspace, model_class=subprocess.run)  # type: ignore[arg-type]
    assert not marker.exists()


def test_torch_state_dict_loads_with_the_callers_or_a_registered_class(workspace) -> None:
    import torch
    from tests.registry.torch_models import TinyNet

    torch.manual_seed(0)
    net = TinyNet(3, 2).eval()
    yard.registry.register_model(
        net, "net", torch_format="state_dict", init_kwargs={"n_in": 3, "n_out": 2}, uri=workspace
    )
    x = np.ones((2, 3), dtype=np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    m = yard.load_model("net/1", uri=workspace, model_class=TinyNet)
    np.testing.assert_array_equal(np.asarray(m.predict(x)), want)
    from modelyard.registry.flavors import torch as torch_flavor

    try:
        assert yard.registry.register_torch_class(TinyNet) is TinyNet
        np.testing.assert_array_equal(np.asarray(yard.load_model("net/1", uri=workspace).predict(x)), want)
    finally:
        torch_flavor._CLASSES.pop(f"{TinyNet.__module__}:{TinyNet.__qualname__}", None)


# -- pyfunc / cloudpickle -----------------------------------------------------------------------------
def test_pyfunc_needs_allow_pickle_and_matching_flavors(workspace, tmp_path) -> None:
    marker = tmp_path / "marker"
    payload = pickle.dumps(Boom(str(marker)))
    ref = inject_model(workspace, {"python_model.cloudpickle": payload}, flavor="pyfunc").ref
    with pytest.raises(
        SerializationError,
        match=rf"Refusing to load model {ref}: it is a pyfunc model, and loading it "
        r"unpickles it, which runs code from the store\. Only if you trust whoever can write to this store, "
        r"pass allow_pickle=True to load_model \(yard serve/evaluate/gate --allow-pickle, or "
        r"allow_pickle: true "
        r"in a deployment spec or gate policy\)\.",
    ):
        yard.load_model(ref, uri=workspace)
    assert not marker.exists()
    # a package that says pyfunc while the registry shows sklearn is refused, even with allow_pickle
    disguised = inject_model(
        workspace, {"python_model.cloudpickle": payload}, flavor="pyfunc", recorded="sklearn", name="safe"
    ).ref
    with pytest.raises(
        SerializationError,
        match=rf"Model {disguised} is recorded as flavor 'sklearn' but its package says "
        r"'pyfunc'; refusing to load a package whose flavor does not match the record",
    ):
        yard.load_model(disguised, uri=workspace, allow_pickle=True)
    assert not marker.exists()
    # the opt-in does what it says
    yard.load_model(ref, uri=workspace, allow_pickle=True)
    assert marker.read_text() == "pwned"


def test_yard_serve_loads_pyfunc_only_with_the_spec_field(workspace, tmp_path) -> None:
    from modelyard.serving import ModelServer, spec_from_flags
    from modelyard.serving._app import SwapError

    marker = tmp_path / "marker"
    ref = inject_model(
        workspace, {"python_model.cloudpickle": pickle.dumps(Boom(str(marker)))}, flavor="pyfunc"
    ).ref
    with pytest.raises(
        SwapError,
        match=r"Refusing to load model evil/1: it is a pyfunc model.*yard serve/evaluate/gate --allow-pickle",
    ):
        ModelServer(spec_from_flags(ref), uri=workspace.location.uri, prediction_log=False).start()
    assert not marker.exists()
    assert spec_from_flags(ref, allow_pickle=True).allow_pickle is True
    # with the field set, the loader unpickles: the opt-in reaches the loader
    server = ModelServer(
        {"models": {"primary": ref}, "allow_pickle": True}, uri=workspace.location.uri, prediction_log=False
    ).start()
    server.close()
    assert marker.read_text() == "pwned"


def test_yard_serve_allow_pickle_flag_conflicts_with_spec(tmp_path) -> None:
    from typer.testing import CliRunner

    from modelyard.cli import app

    spec = tmp_path / "serve.yaml"
    spec.write_text("models: {primary: m/1}\n")
    res = CliRunner().invoke(app, ["serve", "--spec", str(spec), "--allow-pickle"])
    assert res.exit_code == 1
    assert (
        "Error: --spec declares allow_pickle; set 'allow_pickle: true' in the spec file instead of "
        "--allow-pickle." in res.output
    )


# -- every flavor, from a file crafted to run code ------------------------------------------------------
def _crafted(flavor: str, marker: Path) -> tuple[dict[str, bytes], dict, str]:
    """Files, options and the expected refusal for a package of ``flavor`` whose bytes try to run code."""
    boom = pickle.dumps(Boom(str(marker)))
    if flavor == "sklearn":
        return (
            {"model.skops": _skops_gadget(marker)},
            {},
            r"Refusing to load model\.skops: it would instantiate untrusted types",
        )
    if flavor == "pyfunc":
        return {"python_model.cloudpickle": boom}, {}, r"it is a pyfunc model, and loading it unpickles it"
    if flavor == "torch-state-dict":
        return (
            _state_dict_files(),
            {
                "format": "state_dict",
                "class": "subprocess:run",
                "init_kwargs": {"args": ["touch", str(marker)]},
            },
            r"never imports or calls a class",
        )
    if flavor == "torchscript":
        import torch

        buf = io.BytesIO()
        torch.save(Boom(str(marker)), buf)  # a full pickle in a torch zip, in place of a TorchScript archive
        return (
            {"model.torchscript.pt": buf.getvalue()},
            {"format": "torchscript"},
            r"torch\.jit\.load cannot load model\.torchscript\.pt",
        )
    if flavor == "xgboost":
        return {"model.xgb.json": boom}, {"class": "XGBClassifier"}, r"XGBoost cannot load model\.xgb\.json"
    if flavor == "xgboost-class":
        return (
            {"model.xgb.json": b"{}"},
            {"class": "os.system"},
            r"Unknown xgboost class 'os\.system' in the model options",
        )
    if flavor == "lightgbm":
        return {"model.lgb.txt": boom}, {}, r"LightGBM cannot load model\.lgb\.txt"
    if flavor == "onnx":
        return {"model.onnx": boom}, {}, r"onnxruntime cannot load model\.onnx"
    if flavor == "onnx-external-data":  # an initializer read from a file of this machine
        from onnx import TensorProto, helper

        secret = marker.with_name("secret.bin")
        secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
        w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
        for k, v in {"location": str(secret), "offset": "0", "length": "16"}.items():
            w.external_data.add(key=k, value=v)
        io_ = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4]) for n in ("x", "y")]
        graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [io_[0]], [io_[1]], [w])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        return (
            {"model.onnx": model.SerializeToString()},
            {},
            r"onnxruntime cannot load model\.onnx: .*External data path",
        )
    raise AssertionError(flavor)


@pytest.mark.parametrize(
    "case",
    [
        "sklearn",
        "pyfunc",
        "torch-state-dict",
        "torchscript",
        "xgboost",
        "xgboost-class",
        "lightgbm",
        "onnx",
        "onnx-external-data",
    ],
)
def test_every_flavor_refuses_a_file_crafted_to_run_code(workspace, tmp_path, case) -> None:
    marker = tmp_path / "marker"
    files, options, message = _crafted(case, marker)
    flavor = case.split("-")[0].replace("torchscript", "torch")
    ref = inject_model(workspace, files, flavor=flavor, options=options).ref
    with pytest.raises(SerializationError, match=message):
        m = yard.load_model(ref, uri=workspace)
        m.predict(
            np.zeros((2, 2))
        )  # only reached if loading did not refuse: the payload must not run here either
    assert not marker.exists()
