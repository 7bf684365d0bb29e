"""Governance as `Client` methods: policies, the gates, sign-off and promotion.

>>> # with Client() as keel:
>>> #     status = keel.run_gates("credit", 3)        # performance, security, fairness
>>> #     keel.approve("credit", 3, "reviewed the evidence")
>>> #     keel.promote("credit", 3)                   # 409 Conflict lists what still blocks it
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.errors import InvalidInput
from keel.schemas.governance import (
    ApprovalOut,
    DecisionIn,
    GateResultOut,
    PipelineStatusOut,
    PolicyIn,
    PolicyOut,
    PromoteIn,
    PromotionOut,
)
from keel.schemas.jobs import JobOut
from keel.sdk.jobs import raise_if_unsuccessful, wait_for
from keel.sdk.validation import validated

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


def _version(model: str, version: int) -> str:
    return f"{_API}/models/{quote(model, safe='')}/versions/{int(version)}"


class GovernanceMixin:
    """Governance; mixed into `keel.sdk.Client`. Errors arrive as `keel.errors.KeelError`s:
    `Conflict` (409) when a gate blocks promotion, with ``details["gates"]`` saying what would
    make each pass; `PermissionDenied` (403) for a missing role or the registrant approving."""

    if TYPE_CHECKING:
        url: str

        def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M: ...
        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...
        def _parse(self, model: type[M], data: Any) -> M: ...

    def _governance_list(self, model: type[M], path: str, **kwargs: Any) -> list[M]:
        data = self._json("GET", path, **kwargs)
        return [self._parse(model, item) for item in (data if isinstance(data, list) else [])]

    # -- policies -------------------------------------------------------------------------------

    def apply_policy(
        self, policy: str | os.PathLike[str], *, source: str | None = None
    ) -> PolicyOut:
        """Apply a policy file (admins): the path of a YAML file, or its text as ``source``.

        The server refuses an invalid file with the line and field at fault
        (`keel.errors.InvalidInput`); a valid one becomes its tier's next version.
        """
        filename = "policy.yaml"
        if source is None:
            path = Path(policy)
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(
                    f"Cannot read the policy file {str(path)!r}: {exc}.", {"field": "policy"}
                ) from None
            filename = path.name
        body = validated(PolicyIn, {"source": source, "filename": filename}, "policy")
        return self._call(PolicyOut, "POST", f"{_API}/policies", json=body.model_dump(mode="json"))

    def policy(self, tier: str, version: int | None = None) -> PolicyOut:
        """A tier's policy in force (or ``version``; 0 is Keel's built-in default)."""
        params = {} if version is None else {"version": version}
        return self._call(
            PolicyOut, "GET", f"{_API}/policies/{quote(tier, safe='')}", params=params
        )

    def policies(self) -> list[PolicyOut]:
        """The policy in force for every risk tier."""
        return self._governance_list(PolicyOut, f"{_API}/policies")

    def policy_versions(self, tier: str) -> list[PolicyOut]:
        """Every recorded version of a tier's policy, oldest first."""
        return self._governance_list(PolicyOut, f"{_API}/policies/{quote(tier, safe='')}/versions")

    # -- gates ----------------------------------------------------------------------------------

    def start_gate_run(self, model: str, version: int) -> JobOut:
        """Queue a run of gates 1-3; returns the job at once."""
        return self._call(JobOut, "POST", f"{_version(model, version)}/gates/run")

    def run_gates(
        self,
        model: str,
        version: int,
        *,
        timeout: float | None = None,
        on_progress: Callable[[JobOut], None] | None = None,
    ) -> PipelineStatusOut:
        """Run gates 1-3 (Keel evaluates the model itself, in a job) and wait for them; the
        pipeline afterwards."""
        job = self.start_gate_run(model, version)
        raise_if_unsuccessful(wait_for(self, job.id, timeout=timeout, on_progress=on_progress))
        return self.gate_status(model, version)

    def gate_status(self, model: str, version: int) -> PipelineStatusOut:
        """Each gate's outcome and evidence, the decisions, and what blocks promotion."""
        return self._call(PipelineStatusOut, "GET", f"{_version(model, version)}/gates")

    def gate_history(self, model: str, version: int) -> list[GateResultOut]:
        """Every stored gate result of the version, oldest first."""
        return self._governance_list(GateResultOut, f"{_version(model, version)}/gates/history")

    # -- sign-off -------------------------------------------------------------------------------

    def _decide(self, model: str, version: int, decision: str, comment: str) -> ApprovalOut:
        body = validated(DecisionIn, {"decision": decision, "comment": comment}, "decision")
        return self._call(
            ApprovalOut,
            "POST",
            f"{_version(model, version)}/approvals",
            json=body.model_dump(mode="json"),
        )

    def approve(self, model: str, version: int, comment: str) -> ApprovalOut:
        """Approve a version whose gates 1-3 passed (not one you registered)."""
        return self._decide(model, version, "approve", comment)

    def reject(self, model: str, version: int, comment: str) -> ApprovalOut:
        """Reject a version: its candidacy ends and it can never be promoted."""
        return self._decide(model, version, "reject", comment)

    def approvals(self, model: str, version: int) -> list[ApprovalOut]:
        """Every decision on the version, oldest first; void ones say why."""
        return self._governance_list(ApprovalOut, f"{_version(model, version)}/approvals")

    # -- promotion ------------------------------------------------------------------------------

    def promote(self, model: str, version: int, *, break_glass: str | None = None) -> PromotionOut:
        """Point ``production`` at the version once every required gate passed.

        ``break_glass`` is an admin's written justification for overriding failing gates; the
        promotion is then flagged forever and audited.
        """
        body = validated(
            PromoteIn,
            {"break_glass": break_glass is not None, "justification": break_glass or ""},
            "promotion",
        )
        return self._call(
            PromotionOut,
            "POST",
            f"{_version(model, version)}/promote",
            json=body.model_dump(mode="json"),
        )

    def promotions(self, model: str) -> list[PromotionOut]:
        """Every promotion of the model, oldest first, break-glass ones flagged."""
        return self._governance_list(
            PromotionOut, f"{_API}/models/{quote(model, safe='')}/promotions"
        )
