"""Registry benchmarks: model load time vs pickle, and register/load throughput vs copying files.

    python bench/registry.py [--mb 200] [--trees 100] [--repeat 5]

1. Load a registered scikit-learn model (GradientBoostingClassifier, ``--trees`` trees):
   ``yard.load_model`` (metadata query + manifest + blake3 check of every blob + skops load with
   the trusted-type allow-list) against ``pickle.load`` of the same model from a file, and against
   ``skops.io.load`` alone (the format's own cost). Warm: in one process, best of ``--repeat``.
   Cold: a fresh Python process that imports what it needs and loads once.
2. Register and load a ~``--mb`` MB ONNX model (one MatMul with a large weight initializer)
   against ``shutil.copyfile`` of the same ``.onnx`` file (the raw limit of moving the bytes).
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cold(code: str, env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_load(tmp: Path, trees: int, repeat: int) -> None:
    import numpy as np
    import pandas as pd
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    import modelyard as yard

    uri = str(tmp / "store")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((3000, 10)), columns=[f"f{i}" for i in range(10)])
    y = (X["f0"] + X["f1"] * X["f2"] > 0.7).astype(int).to_numpy()
    model = GradientBoostingClassifier(n_estimators=trees, max_depth=3, random_state=0).fit(X, y)
    yard.registry.register_model(model, "bench-gb", input_example=X[:5], uri=uri)
    pkl, skp = tmp / "model.pkl", tmp / "model.skops"
    pkl.write_bytes(pickle.dumps(model, protocol=5))
    sio.dump(model, skp)
    trusted = sio.get_untrusted_types(file=skp)

    def load_pickle() -> object:
        with open(pkl, "rb") as f:
            return pickle.load(f)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_pickle = best(load_pickle, repeat)
        t_skops = best(lambda: sio.load(skp, trusted=trusted), repeat)
        t_yard = best(lambda: yard.load_model("bench-gb/1", uri=uri), repeat)
    m = yard.load_model("bench-gb/1", uri=uri)
    assert (m.predict(X) == model.predict(X)).all()
    print(
        f"## load a registered GradientBoostingClassifier ({trees} trees; pickle "
        f"{pkl.stat().st_size / 1e6:.2f} MB, "
        f"skops {skp.stat().st_size / 1e6:.2f} MB)"
    )
    print(f"warm  pickle.load        {t_pickle * 1e3:9.2f} ms")
    print(f"warm  skops.io.load      {t_skops * 1e3:9.2f} ms   ({t_skops / t_pickle:.0f}x pickle)")
    print(
        f"warm  yard.load_model    {t_yard * 1e3:9.2f} ms   ({t_yard / t_pickle:.0f}x pickle, "
        f"{t_yard / t_skops:.2f}x skops)"
    )

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    c_pickle = cold(
        "import time; t=time.perf_counter(); import pickle, sklearn.ensemble\n"
        f"pickle.load(open({str(pkl)!r}, 'rb')); print(time.perf_counter()-t)",
        env,
    )
    c_yard = cold(
        "import time, warnings; warnings.simplefilter('ignore'); t=time.perf_counter(); import "
        "modelyard as yard\n"
        f"yard.load_model('bench-gb/1', uri={uri!r}); print(time.perf_counter()-t)",
        env,
    )
    print(f"cold  pickle.load        {c_pickle * 1e3:9.0f} ms   (new process: imports + load)")
    print(f"cold  yard.load_model    {c_yard * 1e3:9.0f} ms   ({c_yard / c_pickle:.2f}x pickle)")


def big_onnx(mb: int):  # type: ignore[no-untyped-def]
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    n_in = 2000
    n_out = max(1, mb * 1_000_000 // 4 // n_in)
    w = np.random.default_rng(0).standard_normal((n_in, n_out), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n_out])],
        [numpy_helper.from_array(w, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), n_in


def bench_big(tmp: Path, mb: int) -> None:
    import numpy as np

    import modelyard as yard
    from modelyard.registry._model import load_package

    uri = str(tmp / "store")
    model, n_in = big_onnx(mb)
    t0 = time.perf_counter()
    data = model.SerializeToString()
    t_ser = time.perf_counter() - t0
    size = len(data)
    src, dst = tmp / "big.onnx", tmp / "copy.onnx"
    src.write_bytes(data)
    os.sync()
    t0 = time.perf_counter()
    shutil.copyfile(src, dst)
    with open(dst, "rb") as f:
        os.fsync(f.fileno())
    t_copy = time.perf_counter() - t0
    t0 = time.perf_counter()
    mv = yard.registry.register_model(model, "bench-big", uri=uri)
    t_reg = time.perf_counter() - t0
    ws = yard.get_workspace(uri)
    t0 = time.perf_counter()
    load_package(ws, mv.manifest_digest, warn=False)
    t_fetch = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = yard.load_model("bench-big/1", uri=uri)
    t_load = time.perf_counter() - t0
    import onnxruntime as ort

    t0 = time.perf_counter()
    ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    t_ort = time.perf_counter() - t0
    x = np.ones((2, n_in), dtype=np.float32)
    assert m.predict(x).shape[0] == 2
    mbs = size / 1e6
    print(f"\n## register + load a {mbs:.0f} MB ONNX model")
    print(f"copyfile + fsync           {t_copy:7.2f} s  {mbs / t_copy:7.0f} MB/s")
    print(
        f"register (serialize+store) {t_reg:7.2f} s  {mbs / t_reg:7.0f} MB/s   ({t_reg / t_copy:.2f}x copy)"
    )
    t_store = max(t_reg - t_ser, 1e-9)
    print(
        f"  of which ONNX SerializeToString {t_ser:.2f} s; storing (blake3 + write + fsync + manifest + row) "
        f"{t_store:.2f} s = {mbs / t_store:.0f} MB/s ({t_store / t_copy:.2f}x copy)"
    )
    print(f"first load (cold cache)    {t_fetch:7.2f} s  {mbs / t_fetch:7.0f} MB/s")
    print(
        f"yard.load_model (full)     {t_load:7.2f} s  {mbs / t_load:7.0f} MB/s   "
        f"({t_load / (t_copy + t_ort):.2f}x copy + ort session from file)"
    )
    print(f"  onnxruntime session from the file alone: {t_ort:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        bench_load(Path(tmp), args.trees, args.repeat)
        (Path(tmp) / "big").mkdir()
        bench_big(Path(tmp) / "big", args.mb)


if __name__ == "__main__":
    main()
