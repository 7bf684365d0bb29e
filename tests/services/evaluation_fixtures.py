"""Seeded data, real scikit-learn models and crafted pickles for the evaluation tests."""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from keel.config import Settings
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, ModelVersion, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.services.backend import Backend

ADMIN = Principal("ana", grants=(Grant(Role.ADMIN),))
SIGNATURE = Signature(
    (
        Column("x1", ColumnType.FLOAT),
        Column("x2", ColumnType.FLOAT),
        Column("sex", ColumnType.INTEGER, ColumnRole.PROTECTED_ATTRIBUTE),
        Column("region", ColumnType.STRING, ColumnRole.PROTECTED_ATTRIBUTE),
        Column("y", ColumnType.INTEGER, ColumnRole.TARGET),
    )
)


def open_backend(data_dir: Path) -> Backend:
    backend = Backend.open(Settings.load(data_dir=data_dir, env={}))
    backend.migrate()
    backend.registry.create_team(ADMIN, "risk")
    backend.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    return backend


def dataset(n: int = 600, seed: int = 7, *, biased: bool = False) -> pd.DataFrame:
    """Two features, a binary label, ``sex`` (0/1) and ``region`` with a 10-row group."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    sex = rng.integers(0, 2, size=n)
    logit = 1.5 * x1 - x2 + (3.0 * (2 * sex - 1) if biased else 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    region = np.where(np.arange(n) < 10, "tiny", np.where(np.arange(n) % 2 == 0, "north", "south"))
    return pd.DataFrame({"x1": x1, "x2": x2, "sex": sex, "region": region, "y": y})


def fair_model(train: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(train[["x1", "x2"]], train["y"])


def biased_model(train: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(train[["x1", "x2", "sex"]], train["y"])


def joblib_bytes(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def register(backend: Backend, artifact: bytes, filename: str = "model.joblib") -> ModelVersion:
    return backend.registry.register_version(
        ADMIN, "churn", io.BytesIO(artifact), filename, VersionDraft(signature=SIGNATURE)
    )


def attach(backend: Backend, version: int, frame: pd.DataFrame) -> None:
    backend.evaluation.attach_dataset(
        ADMIN, "churn", version, io.BytesIO(parquet_bytes(frame)), "eval.parquet"
    )


@dataclass
class RunsCommand:
    """Unpickling calls ``os.system(command)``."""

    command: str

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


class _StridedZeros:
    """Unpickling builds a 10^12-element float array over 8 bytes (stride 0): no memory."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (np.ndarray, ((10**12,), "f8", b"\0" * 8, 0, (0,)))


class LoopsForever:
    """Unpickling runs ``frozenset(<10^12 equal floats>)``: days of work in C at constant memory.
    Only globals on the scanner's allowlist (``numpy.ndarray``, ``builtins.frozenset``), so the
    scan passes: only a time limit stops it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (frozenset, (_StridedZeros(),))


class AllocatesTooMuch:
    """Unpickling fills a 3.2 GB ``bytearray`` with zeros (``builtins.bytearray`` passes the
    scanner's allowlist)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (bytearray, (3_200_000_000,))


def trapped_model(trap: object) -> bytes:
    """A fitted DummyClassifier carrying ``trap`` as an attribute, pickled."""
    model = DummyClassifier().fit([[0.0, 0.0], [1.0, 1.0]], [0, 1])
    model.trap = trap
    return pickle.dumps(model)
