"""Serving compute-seconds, end to end: the gateway's real model workers answer requests for two
models; the seconds each batch took in its worker gather in memory (no write per request) and are
written in one batch; `keel costs` prices them per version at the vCPU-hour price, the FOCUS
export carries them, and a shared bill split "in proportion to serving compute-seconds" follows
the real numbers, to the cent."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.serving.serving_fixtures import (
    ADMIN,
    direct,
    fitted_model,
    joblib_bytes,
    register,
    served,
    token_for,
)

from keel.domain.costs import AllocationSource
from keel.domain.permissions import Role
from keel.domain.registry import Model
from keel.services.costs.compute_meter import ComputeMeter
from keel.serving.plans import FixedPlans

ROWS = [[0.5, -1.0], [1.5, 0.2]]
BILL_HEADER = (
    "BilledCost,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargeCategory,"
    "ChargePeriodStart,ChargePeriodEnd,EffectiveCost,ServiceName,Tags\n"
)


def _bill(path: Path, day: datetime, amount: str) -> Path:
    """One untagged (shared) row of the day, in pool "Compute"."""
    start, end = day, day + timedelta(days=1)
    period = day.replace(day=1)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    path.write_text(
        BILL_HEADER + f"{amount},USD,{period:{stamp}},{period:{stamp}},Usage,{start:{stamp}},"
        f"{end:{stamp}},{amount},Compute,\n",
        encoding="utf-8",
    )
    return path


def test_serving_compute_seconds_are_metered_per_version_and_split_a_shared_bill(
    tmp_path: Path,
) -> None:
    with served(tmp_path / "keel") as world:
        backend = world.backend
        # The gateway's meter, with a flush period longer than the test: only `flush` writes.
        world.gateway.compute.close()
        world.gateway.compute = ComputeMeter(backend.costs.compute_usage, flush_s=3600)
        backend.registry.create_model(ADMIN, Model(name="fraud", team="risk", owner="ivo"))
        fraud = register(backend, "fraud", joblib_bytes(fitted_model(seed=5)))
        world.gateway.use_plans(
            FixedPlans({"churn": direct("churn", 1), "fraud": direct("fraud", fraud)})
        )
        body = {"instances": ROWS}
        for model, requests in (("churn", 3), ("fraud", 1)):
            for _ in range(requests):
                answer = world.client.post(
                    f"/models/{model}/invocations", json=body, headers=world.auth
                )
                assert answer.status_code == 200, answer.text

        # Gathered in memory, not yet written: one entry per (model, version, hour).
        usage = backend.costs.compute_usage
        assert usage is not None
        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        window = (day - timedelta(days=1), day + timedelta(days=2))
        assert usage.usage(*window, kind="serving") == []
        assert world.gateway.compute.pending in (2, 4)  # an hour may turn between requests
        world.gateway.compute.flush()
        assert world.gateway.compute.pending == 0
        rows = usage.usage(*window, kind="serving")
        batches = {(r.model, r.version): 0 for r in rows}
        for r in rows:
            batches[(r.model, r.version)] += r.events
        assert batches == {("churn", 1): 3, ("fraud", fraud): 1}
        seconds = usage.seconds_per_model(*window, "serving")
        assert set(seconds) == {"churn", "fraud"}
        assert all(s > 0 for s in seconds.values())

        # Priced at one currency unit per vCPU-second, per version.
        backend.costs.configure(ADMIN, {"vcpu_hour": "3600"})
        start, end = (d.date() for d in window)
        metered = [m for m in backend.costs.metered(start, end) if m.kind == "serving_compute"]
        priced: dict[tuple[str, int | None], Decimal] = {}
        for m in metered:
            assert m.unit == "vCPU-hours"
            key = (m.model, m.version)
            priced[key] = priced.get(key, Decimal(0)) + Decimal(m.micros) / 1_000_000
        assert set(priced) == {("churn", 1), ("fraud", fraud)}
        assert abs(priced[("churn", 1)] - Decimal(repr(seconds["churn"]))) < Decimal("0.000002")

        # A shared bill split by serving compute-seconds: the real numbers, to the cent.
        backend.costs.set_split_rule(ADMIN, "Compute", "compute_seconds")
        bill = _bill(tmp_path / "bill.csv", day, "100.00")
        backend.costs.import_focus(ADMIN, bill, file_format="csv", filename="bill.csv")
        allocations = backend.costs.allocations(start, end)
        assert sum(a.micros for a in allocations) == 100_000_000
        assert not [a for a in allocations if a.source == AllocationSource.UNALLOCATED]
        shares = {a.model: a.micros for a in allocations}
        weights = {m: round(s * 1000) for m, s in seconds.items()}
        expected = 100_000_000 * weights["churn"] / sum(weights.values())
        assert abs(shares["churn"] - expected) <= 1
        assert shares["churn"] + shares["fraud"] == 100_000_000

        # Finance reads Keel's rows from the FOCUS export, model and version in x_ columns.
        admin = token_for(backend, "finance", Role.ADMIN, None)
        month = day.strftime("%Y-%m")
        exported = world.client.get(
            f"/api/v1/costs/metering.csv?month={month}",
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert exported.status_code == 200, exported.text
        lines = list(csv.DictReader(io.StringIO(exported.text)))
        serving = {
            (r["x_KeelModel"], r["x_KeelVersion"])
            for r in lines
            if r["ServiceName"] == "Keel serving compute"
        }
        assert serving == {("churn", "1"), ("fraud", str(fraud))}
