"""Keel's own cost rows as a FOCUS 1.0 CSV, so finance tools read them next to the bills.

Model and version travel in the custom columns ``x_KeelModel`` and ``x_KeelVersion`` (FOCUS
reserves the ``x_`` prefix for them) and in Tags under the allocation tag keys, so importing the
export back into Keel allocates each row to its model.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa
import pyarrow.csv as pacsv

from keel.domain.costs import MeteredCost, micros_to_decimal, parse_month

_SERVICES = {
    "predictions": "Keel predictions",
    "artifact_storage": "Keel artifact storage",
    "telemetry_storage": "Keel telemetry storage",
    "retraining": "Keel retraining",
    "serving_compute": "Keel serving compute",
    "evaluation": "Keel evaluation",
}


def _stamp(day: date) -> str:
    return datetime.combine(day, time(), tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def focus_csv(
    rows: Sequence[MeteredCost], month: str, currency: str, model_tag: str, team_tag: str
) -> bytes:
    """The month's metered rows as FOCUS CSV bytes (header only when there are none)."""
    start, end = parse_month(month)
    amounts = [str(micros_to_decimal(r.micros)) for r in rows]
    columns = {
        "BilledCost": amounts,
        "BillingCurrency": [currency] * len(rows),
        "BillingPeriodStart": [_stamp(start)] * len(rows),
        "BillingPeriodEnd": [_stamp(end)] * len(rows),
        "ChargeCategory": ["Usage"] * len(rows),
        "ChargeDescription": [f"{r.kind} of {r.model}" for r in rows],
        "ChargePeriodStart": [_stamp(r.day) for r in rows],
        "ChargePeriodEnd": [_stamp(r.day + timedelta(days=1)) for r in rows],
        "ConsumedQuantity": [str(r.quantity) for r in rows],
        "ConsumedUnit": [r.unit for r in rows],
        "EffectiveCost": amounts,
        "InvoiceIssuerName": ["Keel"] * len(rows),
        "ProviderName": ["Keel"] * len(rows),
        "PublisherName": ["Keel"] * len(rows),
        "ServiceName": [_SERVICES.get(r.kind, f"Keel {r.kind}") for r in rows],
        "Tags": [json.dumps({model_tag: r.model, team_tag: r.team}) for r in rows],
        "x_KeelModel": [r.model for r in rows],
        "x_KeelVersion": [None if r.version is None else str(r.version) for r in rows],
    }
    table = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()
