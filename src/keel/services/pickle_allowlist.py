"""Which globals a model pickle may name: Keel's allowlist, one (module, name) at a time.

Unpickling runs code in exactly one way: it imports the globals the stream names (``GLOBAL``,
``STACK_GLOBAL``, ``INST``) and calls them (``REDUCE``, ``NEWOBJ``, ``OBJ``, ``INST``, ``BUILD``
through ``__setstate__``). So the whole question is which globals may be named. A global is
allowed when one of two rules accepts it, and for no other reason:

1. **Reviewed callables** (`REVIEWED`): an explicit set of functions and builtin classes that
   pickles of scikit-learn models need and that were read and found harmless *whatever arguments
   a pickle gives them*: NumPy's array, scalar and random-generator reconstructors, Cython's
   ``newObj``/``__pyx_unpickle_*`` helpers, ``copyreg``'s object reconstructors, containers
   (``set``, ``slice``, ``OrderedDict``, ``functools.partial`` ...), and
   ``sklearn.utils.validation.check_array`` (the target of the ``functools.partial`` that
   HistGradientBoosting with ``categorical_features`` stores). ``_codecs.encode`` (how protocol 2
   writes ``bytes``) is allowed only with the exact arguments ``(str, "latin1")``; the walker
   checks that. No other function is ever allowed, so a function re-exported under an allowed
   package (``sklearn.utils._testing.check_output`` is ``subprocess.check_output``,
   ``numpy.lib._datasource._open``, ``scipy._lib._tmpdirs.rmtree``, ``import_module`` in
   ``sklearn.utils.discovery``) is refused like any other.
2. **Model-state classes**: a name in the ``sklearn``, ``numpy`` or ``scipy`` packages that
   - is a plain identifier in a module path without testing, I/O, dataset, build or vendored
     parts (`DENIED_SEGMENTS`), checked *before* anything is imported;
   - resolves, after importing that module (installed, trusted code; never a module outside
     those three packages), to a **class** defined exactly there (``cls.__module__`` and
     ``cls.__qualname__`` equal the pickled names, as pickle writes them: a class re-exported
     under another name is refused);
   - and is a subclass of one of `STATE_BASES`: scikit-learn estimators, NumPy arrays, dtypes,
     scalars and random generators, SciPy sparse matrices, and the few non-estimator classes
     fitted models hold (trees, losses, links, optimizers, neighbour trees, distance metrics),
     minus `DENIED_CLASSES` (``numpy.memmap`` maps files).
   Calling such a class with any arguments only builds an object; its ``__setstate__`` only
   restores fields.

Because every callable a pickle can reach is a global (or a ``functools.partial`` of one), and
every global passes these rules, the targets of ``functools.partial``, ``copyreg._reconstructor``
and ``defaultdict`` are allowed callables too. Known false positives: a pipeline that stores a
NumPy ufunc or a user function (``FunctionTransformer(np.log1p)``) is refused; save such models
with skops or ONNX.
"""

from __future__ import annotations

import importlib
import re
import sys
from functools import cache, lru_cache

# (module, name) pairs read and judged harmless with any arguments a pickle can build.
REVIEWED: frozenset[tuple[str, str]] = frozenset(
    {
        # NumPy arrays and scalars (``numpy.core`` before NumPy 2, ``numpy._core`` after).
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        # NumPy random generators: they build a generator from a known name or class.
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        # Cython ``obj.__new__(obj)`` helpers of scikit-learn's neighbour trees and metrics.
        ("sklearn.neighbors._kd_tree", "newObj"),
        ("sklearn.neighbors._ball_tree", "newObj"),
        ("sklearn.metrics._dist_metrics", "newObj"),
        # Input validation: the target of HistGradientBoosting's categorical preprocessor.
        ("sklearn.utils.validation", "check_array"),
        # joblib's array placeholder; the walker checks it is used only as joblib writes it.
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        # Object reconstruction by ``copyreg`` (``object.__reduce_ex__`` at protocols 0 to 2).
        ("copyreg", "_reconstructor"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
        # Protocol 2 writes bytes as ``_codecs.encode(text, "latin1")``; arguments checked.
        ("_codecs", "encode"),
        # Builtin containers and values (``__builtin__`` is the Python 2 name pickle maps).
        *(
            (module, name)
            for module in ("builtins", "__builtin__")
            for name in (
                "object",
                "set",
                "frozenset",
                "slice",
                "bytes",
                "bytearray",
                "complex",
                "range",
            )
        ),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("functools", "partial"),
    }
)
CODECS_ENCODE = ("_codecs", "encode")
JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")

# Packages whose classes may rebuild model state (rule 2).
STATE_PACKAGES = frozenset({"sklearn", "numpy", "scipy"})
# Module path parts that test, read or write files, compile, or vendor other code: never
# imported, never allowed.
DENIED_SEGMENTS = frozenset(
    {
        "tests",
        "testing",
        "_testing",
        "_testutils",
        "conftest",
        "_mocking",
        "estimator_checks",
        "_pytesttester",
        "datasets",
        "io",
        "_io",
        "npyio",
        "_npyio_impl",
        "format",
        "_format_impl",
        "_datasource",
        "_tmpdirs",
        "f2py",
        "distutils",
        "ctypeslib",
        "externals",
        "_build_utils",
        "__check_build",
        "__main__",
        "setup",
    }
)
# Base classes whose subclasses hold model state and nothing else (rule 2).
STATE_BASES = (
    "sklearn.base.BaseEstimator",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.generic",
    "numpy.random.bit_generator.BitGenerator",
    "numpy.random.bit_generator.SeedSequence",
    "numpy.random._generator.Generator",
    "numpy.random.mtrand.RandomState",
    "scipy.sparse._base._spbase",
    "sklearn.tree._tree.Tree",
    "sklearn.neighbors._kd_tree.BinaryTree64",
    "sklearn.neighbors._kd_tree.BinaryTree32",
    "sklearn.neighbors._ball_tree.BinaryTree64",
    "sklearn.neighbors._ball_tree.BinaryTree32",
    "sklearn.metrics._dist_metrics.DistanceMetric",
    "sklearn._loss._loss.CyLossFunction",
    "sklearn._loss.loss.BaseLoss",
    "sklearn._loss.link.BaseLink",
    "sklearn._loss.link.Interval",
    "sklearn.neural_network._stochastic_optimizers.BaseOptimizer",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.utils._bunch.Bunch",
)
DENIED_CLASSES = ("numpy.memmap",)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _resolve(dotted: str) -> type | None:
    module, _, name = dotted.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return found if isinstance(found, type) else None


@cache
def _bases() -> tuple[type, ...]:
    return tuple(cls for cls in map(_resolve, STATE_BASES) if cls is not None)


@cache
def _denied_classes() -> tuple[type, ...]:
    return tuple(cls for cls in map(_resolve, DENIED_CLASSES) if cls is not None)


@lru_cache(maxsize=4096)  # bounded: the keys come from uploaded files
def is_state_class(module: str, name: str) -> bool:
    """Rule 2: a model-state class of scikit-learn, NumPy or SciPy, defined at this name."""
    parts = module.split(".")
    if (
        parts[0] not in STATE_PACKAGES
        or not all(_IDENTIFIER.match(p) for p in parts)
        or not _IDENTIFIER.match(name)
        or any(p in DENIED_SEGMENTS for p in parts)
    ):
        return False
    if module not in sys.modules:
        try:
            importlib.import_module(module)
        except Exception:  # an absent or broken module: not an allowed class
            return False
    cls = getattr(sys.modules[module], name, None)
    return (
        isinstance(cls, type)
        and cls.__module__ == module
        and cls.__qualname__ == name
        and issubclass(cls, _bases())
        and not issubclass(cls, _denied_classes())
    )


def is_allowed(module: str, name: str) -> bool:
    """Whether a pickle may name ``module.name`` (see the module docstring).

    >>> is_allowed("sklearn.linear_model._logistic", "LogisticRegression")
    True
    >>> is_allowed("sklearn.utils._testing", "check_output")
    False
    """
    return (module, name) in REVIEWED or is_state_class(module, name)
