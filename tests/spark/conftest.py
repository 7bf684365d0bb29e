"""One real Spark ``local[2]`` session for every Spark test.

Skipped when PySpark or Java is missing, unless ``KEEL_REQUIRE_SPARK=1`` (set in CI): then it
fails, so the Spark equality tests can never be skipped unseen.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest


def _missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed (pip install 'keel-mlops[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def spark_ready() -> None:
    """PySpark and Java are here (else skip, or fail under ``KEEL_REQUIRE_SPARK=1``)."""
    missing = _missing()
    if missing is not None:
        if os.environ.get("KEEL_REQUIRE_SPARK") == "1":
            pytest.fail(f"KEEL_REQUIRE_SPARK=1 but {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="session")
def spark(spark_ready: None) -> Iterator[Any]:
    from keel.sdk.spark import spark_session

    session = spark_session("local[2]", "keel-tests")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
