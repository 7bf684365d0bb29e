"""The two kinds of wire model: what clients send, and what the server answers."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema
from pydantic_core import PydanticCustomError


class WireIn(BaseModel):
    """What clients send: an unknown field is an error that names it (a typo, not a no-op)."""

    model_config = ConfigDict(extra="forbid")


class WireOut(BaseModel):
    """What the server answers: an older SDK ignores fields a newer server adds."""

    model_config = ConfigDict(extra="ignore")


# SQLite and PostgreSQL both store integers in 64 bits; a larger id can never match a row, and
# sending one to the database fails inside the driver instead of answering a clear 422.
MAX_INT64 = 2**63 - 1


def _id_in_range(value: int) -> int:
    if not 1 <= value <= MAX_INT64:
        raise PydanticCustomError(
            "out_of_range",
            "must be a whole number from 1 to {high}",
            {"low": 1, "high": MAX_INT64},
        )
    return value


Id = Annotated[
    int,
    AfterValidator(_id_in_range),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_INT64}),
]
"""An id or a version number, in a path, a query or a body: 1 to 2^63-1."""
