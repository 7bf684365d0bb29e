"""Two uploads attaching evaluation data to one version at the same moment both succeed, one
after the other: no 500 from a unique-key collision, and both attachments are in the audit."""

from __future__ import annotations

import io
import threading

import pytest
from tests.services.evaluation_fixtures import (
    ADMIN,
    dataset,
    fair_model,
    joblib_bytes,
    parquet_bytes,
    register,
)

from keel.domain.registry import Model
from keel.services.backend import Backend


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    return empty_backend


def test_concurrent_attachments_to_one_version_queue_instead_of_colliding(
    backend: Backend,
) -> None:
    backend.registry.create_team(ADMIN, "risk")
    backend.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    version = register(backend, joblib_bytes(fair_model(dataset()))).version
    uploads = [parquet_bytes(dataset(n=100 + i, seed=i)) for i in range(4)]
    start = threading.Barrier(len(uploads))
    failures: list[BaseException] = []

    def attach(data: bytes) -> None:
        start.wait()
        try:
            backend.evaluation.attach_dataset(
                ADMIN, "churn", version, io.BytesIO(data), "eval.parquet"
            )
        except BaseException as exc:  # collected, so the test names what went wrong
            failures.append(exc)

    threads = [threading.Thread(target=attach, args=(data,)) for data in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    attached = backend.evaluation.dataset("churn", version)
    assert attached is not None and attached.rows in {100, 101, 102, 103}
    events = backend.audit.events(ADMIN, action="evaluation_data.attach")
    assert len(events) == len(uploads)
    assert events[-1].details["sha256"] == attached.sha256
