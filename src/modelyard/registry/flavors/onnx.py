"""ONNX flavor: the model's protobuf bytes, run with onnxruntime on the CPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelyard.errors import SerializationError
from modelyard.registry.flavors._base import Flavor

__all__ = ["OnnxFlavor"]

FILE = "model.onnx"
_NP = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": object,
    "tensor(bool)": np.bool_,
}


class OnnxFlavor(Flavor):
    name = "onnx"
    packages = ("onnxruntime", "onnx", "numpy")

    def detects(self, model: Any) -> bool:
        return type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx")

    def save(self, model: Any, *, example: Any = None, **_: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        return {FILE: model.SerializeToString()}, {}

    def load(self, files: dict[str, bytes], options: dict[str, Any], **_: Any) -> Any:
        import onnxruntime as ort

        try:
            return ort.InferenceSession(files[FILE], providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise SerializationError(f"onnxruntime cannot load {FILE}: {exc}") from exc

    def _feed(self, sess: Any, df: Any) -> dict[str, Any]:
        inputs = sess.get_inputs()
        if len(inputs) == 1:
            return {inputs[0].name: df.to_numpy().astype(_NP.get(inputs[0].type, np.float32))}
        missing = [i.name for i in inputs if i.name not in df.columns]
        if missing:
            raise SerializationError(
                f"The ONNX model expects inputs {[i.name for i in inputs]}; missing {missing}."
            )
        return {
            i.name: df[i.name].to_numpy().astype(_NP.get(i.type, np.float32)).reshape(-1, 1) for i in inputs
        }

    def predict(self, raw: Any, df: Any, options: dict[str, Any]) -> Any:
        return np.asarray(raw.run(None, self._feed(raw, df))[0])

    def has_proba(self, raw: Any, options: dict[str, Any]) -> bool:
        return len(raw.get_outputs()) > 1

    def predict_proba(self, raw: Any, df: Any, options: dict[str, Any]) -> Any:
        outs = raw.run(None, self._feed(raw, df))
        if len(outs) < 2:
            raise AttributeError("This ONNX model has one output; it has no predict_proba.")
        proba = outs[1]
        if isinstance(proba, list) and proba and isinstance(proba[0], dict):  # skl2onnx ZipMap
            keys = sorted(proba[0])
            return np.array([[row[k] for k in keys] for row in proba])
        return np.asarray(proba)
