"""The two kinds of wire model: what clients send, and what the server answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireIn(BaseModel):
    """What clients send: an unknown field is an error that names it (a typo, not a no-op)."""

    model_config = ConfigDict(extra="forbid")


class WireOut(BaseModel):
    """What the server answers: an older SDK ignores fields a newer server adds."""

    model_config = ConfigDict(extra="ignore")
