"""Maturity from Python (methods of `keel.sdk.Client`), e.g.::

for score in keel.maturity(team="risk"):
    print(score.subject, score.google.level, score.microsoft.level)
keel.attest_maturity("ci_tests", "pytest on every push", model="credit")   # admins
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from keel.errors import TransportError
from keel.schemas.maturity import AttestationIn, AttestationOut, MaturityOut
from keel.sdk.validation import validated

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class _Http(Protocol):
    url: str

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


class MaturityCalls:
    """The maturity part of `keel.sdk.Client`."""

    def maturity(
        self: _Http, *, model: str | None = None, team: str | None = None
    ) -> list[MaturityOut]:
        """The score of ``model``, of ``team``, or (neither) of every model then every team:
        each criterion with its evidence or what is missing, and the level on both scales."""
        params = {k: v for k, v in (("model", model), ("team", team)) if v is not None}
        data = self._json("GET", f"{_API}/maturity", params=params)
        if not isinstance(data, list):
            raise TransportError(f"The server at {self.url} answered scores with {data!r}.")
        return [self._parse(MaturityOut, item) for item in data]

    def attest_maturity(
        self: _Http,
        criterion: str,
        comment: str,
        *,
        model: str | None = None,
        team: str | None = None,
    ) -> AttestationOut:
        """Attest a criterion Keel cannot observe for a model or team (admins; audited)."""
        body = validated(
            AttestationIn,
            {"criterion": criterion, "comment": comment, "model": model, "team": team},
            "attestation",
        )
        answer = self._json(
            "POST", f"{_API}/maturity/attestations", json=body.model_dump(mode="json")
        )
        return self._parse(AttestationOut, answer)
