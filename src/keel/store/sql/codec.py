"""Turn JSON columns and rows into domain entities and back; rows never leave the store."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from keel.domain.registry import (
    Artifact,
    ArtifactFlavor,
    DatasetFingerprint,
    Environment,
    Lineage,
    ModelCard,
)
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import InvalidInput


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def encode_cursor(key: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))["k"]
        # A forged cursor must not reach the database with a key it cannot bind: an integer
        # past 64 bits, or a string holding a lone surrogate.
        if isinstance(key, bool) or not isinstance(key, str | int):
            raise TypeError
        if isinstance(key, int) and not -(2**63) <= key < 2**63:
            raise ValueError
        if isinstance(key, str):
            key.encode()
        return key
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise InvalidInput(
            "The 'cursor' parameter is not one this server issued. Pass the 'next_cursor' value "
            "of the previous page unchanged, or leave it out to start from the first page.",
            {"field": "cursor"},
        ) from None


def signature_to_json(signature: Signature) -> list[dict[str, Any]]:
    return [
        {"name": c.name, "dtype": str(c.dtype), "role": str(c.role), "nullable": c.nullable}
        for c in signature.columns
    ]


def signature_from_json(data: list[dict[str, Any]]) -> Signature:
    return Signature(
        tuple(
            Column(c["name"], ColumnType(c["dtype"]), ColumnRole(c["role"]), bool(c["nullable"]))
            for c in data
        )
    )


def lineage_to_json(lineage: Lineage) -> dict[str, Any]:
    return dataclasses.asdict(lineage)


def lineage_from_json(data: dict[str, Any]) -> Lineage:
    fingerprint = data.get("training_data")
    return Lineage(
        training_data=DatasetFingerprint(
            sha256=fingerprint["sha256"],
            rows=fingerprint["rows"],
            columns=tuple((str(n), str(t)) for n, t in fingerprint["columns"]),
        )
        if fingerprint
        else None,
        git_commit=data.get("git_commit"),
        git_repo_url=data.get("git_repo_url"),
        git_dirty=data.get("git_dirty"),
        parent_version=data.get("parent_version"),
    )


def environment_from_json(data: dict[str, Any]) -> Environment:
    return Environment(python_version=data.get("python_version"), packages=data["packages"])


_CARD_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelCard))


def card_from_json(data: dict[str, Any]) -> ModelCard:
    """The stored card; rows written before a field existed read it as empty."""
    return ModelCard(**{k: str(v) for k, v in data.items() if k in _CARD_FIELDS})


def artifact_from_row(row: Row[Any]) -> Artifact:
    return Artifact(
        sha256=row.artifact_sha256,
        size=row.artifact_size,
        flavor=ArtifactFlavor(row.artifact_flavor),
        filename=row.artifact_filename,
    )
