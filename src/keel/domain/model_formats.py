"""Model formats: which load without running code, and which only in the sandbox.

| flavor                            | loading it                                              |
|-----------------------------------|---------------------------------------------------------|
| ``skops``                         | loads without running code (types on Keel's list only)  |
| ``onnx``                          | loads without running code (onnxruntime reads a graph)  |
| ``sklearn``/``joblib``/``pickle`` | runs code when loaded: only in the sandbox              |
| ``other`` (PyTorch zip, ...)      | not scanned: Keel cannot tell what loading it does      |

The trusted skops types are an explicit list, shared by the SDK (which picks skops when a model
round-trips with them) and the server (which refuses skops files naming anything else).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from keel.domain.registry import ArtifactFlavor

# Loading these cannot run code from the file; the others can, so they load only in the sandbox.
CODE_FREE_FLAVORS = frozenset({ArtifactFlavor.SKOPS, ArtifactFlavor.ONNX})
PICKLE_FLAVORS = frozenset({ArtifactFlavor.SKLEARN, ArtifactFlavor.JOBLIB, ArtifactFlavor.PICKLE})

# Beyond skops' defaults: what common scikit-learn models hold (decision trees and their
# ensembles, histogram gradient boosting incl. categorical features, k-nearest neighbours, MLPs,
# pipelines with an explicit dtype). Each is a class rebuilt from its state, or a function that
# only validates arrays.
TRUSTED_SKOPS_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "functools.partial",
    "sklearn.utils.validation.check_array",
)


def loading_note(flavor: ArtifactFlavor) -> str:
    """What loading an artifact of this flavor does, in the words the security gate reports."""
    if flavor in CODE_FREE_FLAVORS:
        return "loads without running code"
    if flavor in PICKLE_FLAVORS:
        return "runs code when loaded: only in the sandbox"
    return "not scanned: Keel cannot tell what loading it does"


def keel_untrusted(types: Iterable[str]) -> list[str]:
    """The types among those skops does not trust by default that Keel does not trust either."""
    return sorted(set(types) - set(TRUSTED_SKOPS_TYPES))


def untrusted_message(types: Sequence[str]) -> str:
    shown = ", ".join(types[:5]) + (f" and {len(types) - 5} more" if len(types) > 5 else "")
    return (
        f"The skops file names types Keel does not trust ({shown}); it was not loaded. Keel "
        "trusts skops' defaults and common scikit-learn internals only. Save the model as "
        "ONNX, or as a pickle/joblib file (which runs only in Keel's sandbox)."
    )
