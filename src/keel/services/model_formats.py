"""Loading the formats that load without running code (see `keel.domain.model_formats`).

**skops.** ``skops.io.load`` rebuilds an object only from types it trusts, and it never calls
``__reduce__``. Keel passes an explicit ``trusted=`` list: skops' own defaults (scikit-learn
estimators, NumPy and SciPy containers, builtins) plus `TRUSTED_SKOPS_TYPES`, the scikit-learn
internals that common models hold (tree structures, neighbour trees, optimiser state). It never
passes "whatever `get_untrusted_types` returns": a file that names any other type is refused with
the type names. Functions are trusted one by one, never by package: a function stored in a
model is one the model may later call. ``functools.partial`` is trusted because skops checks the
function it wraps separately.

**ONNX.** An ``onnxruntime.InferenceSession`` over the graph; classifiers' label and
probability outputs are read back as ``predict`` / ``predict_proba`` with the class order taken
from the graph's ``classlabels_*`` attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keel.domain.model_formats import TRUSTED_SKOPS_TYPES, keel_untrusted, untrusted_message

# The server reads a skops file's schema itself (to judge it before anything loads it): a schema
# larger than this is refused rather than decompressed (a zip bomb would exhaust its memory).
MAX_SCHEMA_BYTES = 64 << 20


def untrusted_skops_types(data: bytes | None = None, *, path: Path | None = None) -> list[str]:
    """Types a skops file (``data`` or ``path``) names that Keel does not trust (empty: it
    loads without running code).

    Reads the file's schema only; nothing in it is constructed. Raises ``ValueError`` (or a
    zip/JSON error) when the bytes are not a skops file or its schema is too large.
    """
    import io
    import zipfile

    import skops.io  # type: ignore[import-untyped,unused-ignore]

    source: Path | io.BytesIO = path if path is not None else io.BytesIO(data or b"")
    with zipfile.ZipFile(source) as archive:
        size = archive.getinfo("schema.json").file_size  # zipfile never reads past it
    if size > MAX_SCHEMA_BYTES:
        raise ValueError(f"its schema.json is {size} bytes; Keel reads at most {MAX_SCHEMA_BYTES}")
    found = (
        skops.io.get_untrusted_types(data=data)
        if path is None
        else skops.io.get_untrusted_types(file=path)
    )
    return keel_untrusted(found)


class UntrustedTypes(Exception):
    def __init__(self, types: Sequence[str]) -> None:
        super().__init__(untrusted_message(types))
        self.types = list(types)


def load_skops(path: Path) -> Any:
    """The estimator in a skops file, refusing files that name types Keel does not trust."""
    import skops.io  # type: ignore[import-untyped,unused-ignore]

    untrusted = untrusted_skops_types(path=path)
    if untrusted:
        raise UntrustedTypes(untrusted)
    # Keel's explicit list, never what the file asks for: skops refuses anything else itself.
    return skops.io.load(path, trusted=list(TRUSTED_SKOPS_TYPES))


class OnnxModel:
    """An ONNX graph behind the small estimator interface the evaluator uses.

    ``features`` is the column order of the graph's input: one 2-D input takes them as a matrix
    in that order; several inputs are matched to columns by name.
    """

    def __init__(self, path: Path, features: Sequence[str]) -> None:
        import onnx
        import onnxruntime  # type: ignore[import-untyped,unused-ignore]

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.features = list(features)
        self.inputs = self.session.get_inputs()
        self.outputs = [o.name for o in self.session.get_outputs()]
        self._classes = _class_labels(onnx.load(str(path), load_external_data=False))
        self._cache: tuple[int, list[Any]] | None = None

    @property
    def classes_(self) -> list[Any]:
        if self._classes is None:
            raise AttributeError("classes_")
        return self._classes

    def _feed(self, frame: Any) -> dict[str, Any]:
        import numpy as np

        if len(self.inputs) == 1:
            only = self.inputs[0]
            return {only.name: frame[self.features].to_numpy().astype(_numpy_type(only.type))}
        feed: dict[str, Any] = {}
        for item in self.inputs:
            if item.name not in frame.columns:
                raise ValueError(
                    f"the ONNX graph has an input {item.name!r} that is not a column of the data"
                )
            column = frame[item.name].to_numpy().astype(_numpy_type(item.type))
            feed[item.name] = np.reshape(column, (-1, 1))
        return feed

    def _run(self, frame: Any) -> list[Any]:
        if self._cache is None or self._cache[0] != id(frame):
            self._cache = (id(frame), self.session.run(None, self._feed(frame)))
        return self._cache[1]

    def predict(self, frame: Any) -> Any:
        import numpy as np

        return np.ravel(np.asarray(self._run(frame)[0]))

    def predict_proba(self, frame: Any) -> Any:
        import numpy as np

        if len(self.outputs) < 2:
            raise AttributeError("predict_proba")
        proba = self._run(frame)[1]
        if isinstance(proba, list):  # ZipMap: one {label: probability} per row
            if self._classes is None:
                self._classes = list(proba[0]) if proba else []
            labels = self._classes
            return np.array([[row[label] for label in labels] for row in proba], dtype=float)
        return np.asarray(proba, dtype=float)


def _class_labels(model: Any) -> list[Any] | None:
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings":
                return [s.decode() for s in attribute.strings]
            if attribute.name in ("classlabels_ints", "classlabels_int64s"):
                return list(attribute.ints)
    return None


def _numpy_type(onnx_type: str) -> Any:
    import numpy as np

    types = {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(string)": object,
        "tensor(bool)": np.bool_,
    }
    return types.get(onnx_type, np.float32)


def has_predict_proba(model: Any) -> bool:
    if isinstance(model, OnnxModel):
        return len(model.outputs) >= 2
    return hasattr(model, "predict_proba")
