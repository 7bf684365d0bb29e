"""Checks on what a caller hands the SDK, done before anything is sent, so errors read alike."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from keel.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

ParamValue = str | int | float | bool | None


def validated(model: type[M], data: Any, what: str) -> M:
    """``model`` built from ``data``, or `InvalidInput` saying which field is wrong and why."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or what}: {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidInput(f"Invalid {what}: {problems}.", {"field": what}) from None


def _plain(value: Any) -> Any:
    # NumPy scalars (what scikit-learn's metrics and get_params() return) become Python ones.
    return value.item() if isinstance(value, np.generic) else value


def finite_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """Metrics as floats; a NaN, infinite or non-numeric one raises `InvalidInput` naming it.

    >>> finite_metrics({"auc": 0.91})
    {'auc': 0.91}
    >>> finite_metrics({"auc": float("nan")})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keel.errors.InvalidInput: The metric 'auc' is nan; metrics must be finite numbers ...
    """
    checked: dict[str, float] = {}
    for name, raw in (metrics or {}).items():
        value = _plain(raw)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(
                f"The metric {name!r} is {value!r}; metrics must be numbers.",
                {"field": "metrics", "metric": name},
            )
        if not math.isfinite(value):
            raise InvalidInput(
                f"The metric {name!r} is {value}; metrics must be finite numbers "
                "(leave it out if it could not be computed).",
                {"field": "metrics", "metric": name},
            )
        checked[str(name)] = float(value)
    return checked


def plain_params(params: Mapping[str, Any] | None) -> dict[str, ParamValue]:
    """Hyperparameters as JSON scalars; NaN, infinity or an object raises `InvalidInput`.

    >>> plain_params({"C": 1.0, "solver": "lbfgs", "class_weight": None})
    {'C': 1.0, 'solver': 'lbfgs', 'class_weight': None}
    """
    checked: dict[str, ParamValue] = {}
    for name, raw in (params or {}).items():
        value = _plain(raw)
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidInput(
                f"The param {name!r} is a {type(value).__name__}; params must be strings, "
                "numbers, booleans or None (record a nested object by its name).",
                {"field": "params", "param": name},
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(
                f"The param {name!r} is {value}; params must be finite numbers.",
                {"field": "params", "param": name},
            )
        checked[str(name)] = value
    return checked
