"""Loaders for the model formats that cannot execute code when loaded: these run in the registry's own
process (the validator's, the auditor's). Each reads a data file with the format's own parser and never
goes through MLflow's flavour loaders, which may unpickle or import the developer's modules.

* scikit-learn in ``skops`` format, restricted to classes from ``TRUSTED_MODULES`` (the allow-list the
  developer wrote into MLmodel is ignored);
* LightGBM native text (``model.lgb``);
* XGBoost native JSON/UBJSON (``model.json``/``model.ubj``): a tree dump parsed by libxgboost. The
  scikit-learn wrapper class is chosen from a fixed table by the ``model_class`` string, never imported
  from it, so a crafted MLmodel cannot name a module to import;
* ONNX graphs run by onnxruntime on the CPU provider: an ONNX file holds operators and tensors, no Python.
  The session options and execution providers written into MLmodel are ignored (a custom-op library or
  another provider would load native code), and tensors stored as external data must live inside the
  model folder (a crafted path could make the graph read any file of the validator's machine).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from modelreg.errors import ModelregError

TRUSTED_MODULES = ("sklearn", "lightgbm", "numpy", "scipy.sparse", "collections")
# XGBoost's estimator classes by the ``model_class`` MLflow records; anything else loads as a bare Booster.
XGBOOST_CLASSES = {
    "xgboost.sklearn.XGBClassifier": "XGBClassifier",
    "xgboost.sklearn.XGBRegressor": "XGBRegressor",
    "xgboost.XGBClassifier": "XGBClassifier",
    "xgboost.XGBRegressor": "XGBRegressor",
}
XGBOOST_DATA_SUFFIXES = (".json", ".ubj")


class ModelRefused(ModelregError):
    """The model's format can run code when loaded and nothing authorised running it (in the worker)."""

    code = "model_refused"
    exit_status = 1


def load_skops(path: Path) -> Any:
    import skops.io

    needed = skops.io.get_untrusted_types(file=path)
    refused = [t for t in needed if not _trusted_type(t)]
    if refused:
        raise ModelRefused(
            f"the skops file {path.name} needs types outside the registry's trusted list: {', '.join(refused[:8])}"
        )
    return skops.io.load(path, trusted=needed)


def _trusted_type(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if not module or not any(module == m or module.startswith(m + ".") for m in TRUSTED_MODULES):
        return False
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type)  # classes only: a trusted module's function could still be called on load


def load_lightgbm(path: Path) -> Any:
    import lightgbm
    import numpy as np

    booster = lightgbm.Booster(model_file=str(path))
    booster.feature_names_in_ = np.asarray(booster.feature_name())
    return booster


def load_xgboost(path: Path, model_class: str | None) -> Any:
    import numpy as np
    import xgboost

    cls_name = XGBOOST_CLASSES.get(str(model_class or ""))
    if cls_name is not None:  # the estimator exposes feature_names_in_ itself
        model = getattr(xgboost, cls_name)()
        model.load_model(str(path))
        return model
    booster = xgboost.Booster()
    booster.load_model(str(path))
    if booster.feature_names:
        booster.feature_names_in_ = np.asarray([str(n) for n in booster.feature_names])
    return booster


def xgboost_data_is_native(data: str) -> bool:
    """MLflow's ``model_format`` ``xgb`` is XGBoost's deprecated binary, which 3.x no longer writes; only
    the JSON and UBJSON dumps are read here."""
    return data.endswith(XGBOOST_DATA_SUFFIXES)


def load_onnx(path: Path, feature_names: list[str] | None) -> OnnxModel:
    _refuse_escaping_external_data(path)
    model = OnnxModel(path, feature_names)
    if model.probability_output is not None:  # a classifier: monitors ask it for probabilities
        model.__class__ = OnnxClassifier
    return model


def _refuse_escaping_external_data(path: Path) -> None:
    import onnx

    graph = onnx.load(str(path), load_external_data=False)
    root = path.parent.resolve()
    tensors = list(graph.graph.initializer)
    for node in graph.graph.node:
        tensors.extend(a.t for a in node.attribute if a.HasField("t"))
    for tensor in tensors:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (root / location).resolve()
        if not target.is_relative_to(root):
            raise ModelRefused(
                f"the ONNX file {path.name} reads tensor {tensor.name!r} from {location!r}, outside the model folder"
            )


def signature_inputs(model_dir: Path) -> list[str] | None:
    """Column names from MLmodel's signature, the only place an ONNX model with one tensor input keeps them."""
    import yaml

    spec = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8")) or {}
    raw = (spec.get("signature") or {}).get("inputs")
    if not raw:
        return None
    try:
        cols = json.loads(raw)
    except (TypeError, ValueError):
        return None
    names = [c.get("name") for c in cols if isinstance(c, dict)]
    return [str(n) for n in names] if names and all(names) else None


class OnnxModel:
    """An ONNX binary classifier or regressor as the monitors expect a model: ``predict``, ``predict_proba``
    (``OnnxClassifier``, when the graph has a probability output) and ``feature_names_in_``.

    Two input layouts are supported, the ones skl2onnx, onnxmltools and the LightGBM/XGBoost converters
    write: one 2-D float tensor holding every feature (column order from MLmodel's signature), or one input
    per column named after it. Class probabilities come from the output named like ``probabilities``, either
    a (rows, classes) tensor or skl2onnx's ZipMap (a list of {class: probability} maps).
    """

    def __init__(self, path: Path, feature_names: list[str] | None) -> None:
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings would break the CLI's one-line stderr
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = self._session.get_inputs()
        outputs = [o.name for o in self._session.get_outputs()]
        self.probability_output = next((o for o in outputs if "prob" in o.lower()), None)
        self._label = next((o for o in outputs if o != self.probability_output), outputs[0])
        if len(self._inputs) == 1:
            shape = self._inputs[0].shape
            width = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
            if feature_names is None:
                raise ModelRefused(
                    f"the ONNX model {path.name} takes one tensor and its MLmodel has no input signature: "
                    "the registry cannot tell which column is which (log it with a signature)"
                )
            if width is not None and width != len(feature_names):
                raise ModelRefused(
                    f"the ONNX model {path.name} takes {width} features but its signature names {len(feature_names)}"
                )
            self._columns = list(feature_names)
            self._stacked = True
        else:
            self._columns = [i.name for i in self._inputs]
            self._stacked = False
        self.feature_names_in_ = np.asarray(self._columns)
        self._dtypes = {i.name: _numpy_type(i.type) for i in self._inputs}

    def _feed(self, X: Any) -> dict[str, Any]:
        import numpy as np
        import pandas as pd

        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X), columns=self._columns)
        missing = [c for c in self._columns if c not in frame.columns]
        if missing:
            raise ModelregError(f"the ONNX model needs columns {missing[:5]} that the data does not have")
        if self._stacked:
            name = self._inputs[0].name
            return {name: frame[self._columns].to_numpy(dtype=self._dtypes[name])}
        return {c: frame[[c]].to_numpy(dtype=self._dtypes[c]) for c in self._columns}

    def _run(self, name: str, X: Any) -> Any:
        return self._session.run([name], self._feed(X))[0]

    def predict(self, X: Any) -> Any:
        import numpy as np

        return np.asarray(self._run(self._label, X)).ravel()


class OnnxClassifier(OnnxModel):
    """An ONNX model with a probability output."""

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        out = self._run(self.probability_output, X)  # type: ignore[arg-type]
        if isinstance(out, list):  # ZipMap: one {class: p} per row
            classes = sorted(out[0]) if out else []
            return np.asarray([[row[c] for c in classes] for row in out], dtype=float)
        return np.asarray(out, dtype=float)


def _numpy_type(onnx_type: str) -> Any:
    import numpy as np

    return {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(string)": object,
        "tensor(bool)": np.bool_,
    }.get(onnx_type, np.float32)
