"""Governance records over SQLAlchemy Core: policy versions, gate results, approvals, promotions.

Every write appends its audit events in the same transaction, and lifecycle moves that follow
from governance (registered -> candidate when gates first run, candidate -> approved when
sign-off completes, approved -> candidate when approvals are voided, -> production on promotion,
previous production -> retired) happen in that transaction too, so the records and the
version's status never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select, update

from keel.domain.governance import (
    Approval,
    Decision,
    Gate,
    GateOutcome,
    GateResult,
    PolicyRecord,
    Promotion,
)
from keel.domain.lifecycle import VersionStatus
from keel.domain.policy import parse_policy
from keel.errors import Conflict, NotFound
from keel.store.sql import audit, codec, signoff_queue
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.registry import move_version_status
from keel.store.sql.signoff_queue import CandidateRecord
from keel.store.sql.tables import (
    alias_assignments,
    model_versions,
    models,
)
from keel.store.sql.tables_governance import approvals, gate_results, policies, promotions
from keel.store.sql.tables_playbooks import rollbacks

PRODUCTION_ALIAS = "production"

# From each status, the lifecycle steps that lead to production (see keel.domain.lifecycle).
_TO_PRODUCTION: dict[VersionStatus, tuple[VersionStatus, ...]] = {
    VersionStatus.REGISTERED: (
        VersionStatus.CANDIDATE,
        VersionStatus.APPROVED,
        VersionStatus.PRODUCTION,
    ),
    VersionStatus.CANDIDATE: (VersionStatus.APPROVED, VersionStatus.PRODUCTION),
    VersionStatus.APPROVED: (VersionStatus.PRODUCTION,),
    VersionStatus.RETIRED: (VersionStatus.PRODUCTION,),
}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewGateResult:
    """A gate's verdict before it is stored."""

    gate: Gate
    outcome: GateOutcome
    evidence: Mapping[str, Any]
    evidence_digest: str


@dataclass(frozen=True)
class NewPromotion:
    actor: str
    break_glass: bool
    justification: str
    overridden: tuple[str, ...]
    policy_tier: str | None
    policy_version: int | None
    # Set for a rollback: the alias moves back to an earlier production version. The promotion
    # is recorded as usual, plus a `rollbacks` row, and audited as governance.rollback.
    rollback: RollbackNote | None = None


@dataclass(frozen=True)
class RollbackNote:
    reason: str
    incident_id: int | None
    from_version: int


class SqlGovernanceStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlGovernanceStore(backend={self._engine.dialect.name!r})"

    # -- shared helpers -------------------------------------------------------------------------

    @staticmethod
    def _lock_model(conn: Connection, model: str) -> Any:
        # Touching the row takes its lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds
        # the write lock. Either way, governance writes to one model happen one at a time.
        conn.execute(update(models).where(models.c.name == model).values(updated_at=_now()))
        row = conn.execute(select(models).where(models.c.name == model)).first()
        if row is None:
            raise NotFound(f"No model named {model!r}.", {"model": model})
        return row

    @staticmethod
    def _version_row(conn: Connection, model: str, version: int) -> Any:
        row = conn.execute(
            select(model_versions)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == model, model_versions.c.version == version)
        ).first()
        if row is None:
            if conn.execute(select(models.c.id).where(models.c.name == model)).first() is None:
                raise NotFound(f"No model named {model!r}.", {"model": model})
            raise NotFound(
                f"Model {model!r} has no version {version}.", {"model": model, "version": version}
            )
        return row

    @staticmethod
    def _move(
        conn: Connection, row: Any, model: str, target: VersionStatus, actor: str, reason: str
    ) -> None:
        move_version_status(conn, row, model, target, actor, reason, _now())

    def _walk(
        self,
        conn: Connection,
        model: str,
        version: int,
        path: Sequence[VersionStatus],
        actor: str,
        reason: str,
    ) -> None:
        for target in path:
            self._move(conn, self._version_row(conn, model, version), model, target, actor, reason)

    # -- policies -------------------------------------------------------------------------------

    @staticmethod
    def _policy(row: Any) -> PolicyRecord:
        return PolicyRecord(
            tier=row.tier,
            version=row.version,
            source=row.source,
            created_by=row.created_by,
            created_at=codec.utc(row.created_at),
            policy=parse_policy(row.document),
            sha256=row.sha256,
        )

    def latest_policy(self, tier: str) -> PolicyRecord | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(policies)
                .where(policies.c.tier == tier)
                .order_by(policies.c.version.desc())
                .limit(1)
            ).first()
        return None if row is None else self._policy(row)

    def policy(self, tier: str, version: int) -> PolicyRecord | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(policies).where(policies.c.tier == tier, policies.c.version == version)
            ).first()
        return None if row is None else self._policy(row)

    def policy_versions(self, tier: str) -> list[PolicyRecord]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(policies).where(policies.c.tier == tier).order_by(policies.c.version)
            ).all()
        return [self._policy(r) for r in rows]

    def add_policy(
        self,
        tier: str,
        source: str,
        document: Mapping[str, Any],
        sha256: str,
        actor: str,
        *,
        action: str = "policy.apply",
        only_if_none: bool = False,
    ) -> PolicyRecord:
        """Store the tier's next policy version. With ``only_if_none``, return the newest
        stored version instead when there is one (recording the default exactly once)."""
        with write_transaction(self._engine) as conn:
            newest = conn.execute(
                select(func.max(policies.c.version)).where(policies.c.tier == tier)
            ).scalar()
            if only_if_none and newest is not None:
                row = conn.execute(
                    select(policies).where(policies.c.tier == tier, policies.c.version == newest)
                ).one()
                return self._policy(row)
            number = int(newest or 0) + 1
            conn.execute(
                policies.insert().values(
                    tier=tier,
                    version=number,
                    source=source,
                    document=dict(document),
                    sha256=sha256,
                    created_by=actor,
                    created_at=_now(),
                )
            )
            audit.append(
                conn,
                actor=actor,
                action=action,
                subject_type="policy",
                subject_id=tier,
                details={"tier": tier, "version": number, "sha256": sha256},
            )
            row = conn.execute(
                select(policies).where(policies.c.tier == tier, policies.c.version == number)
            ).one()
            return self._policy(row)

    # -- gate results ---------------------------------------------------------------------------

    @staticmethod
    def _result(row: Any, model: str, version: int) -> GateResult:
        return GateResult(
            id=row.id,
            model=model,
            version=version,
            gate=Gate(row.gate),
            outcome=GateOutcome(row.outcome),
            evidence=dict(row.evidence),
            policy_tier=row.policy_tier,
            policy_version=row.policy_version,
            evaluated_by=row.evaluated_by,
            evaluated_at=codec.utc(row.evaluated_at),
            evidence_digest=row.evidence_digest,
        )

    def _results(self, conn: Connection, model: str, version: int) -> list[GateResult]:
        row = self._version_row(conn, model, version)
        rows = conn.execute(
            select(gate_results)
            .where(gate_results.c.version_id == row.id)
            .order_by(gate_results.c.id)
        ).all()
        return [self._result(r, model, version) for r in rows]

    def gate_results(self, model: str, version: int) -> list[GateResult]:
        """Every stored gate result of the version, oldest first."""
        with read_transaction(self._engine) as conn:
            return self._results(conn, model, version)

    def record_gates(
        self,
        model: str,
        version: int,
        results: Sequence[NewGateResult],
        *,
        policy_tier: str,
        policy_version: int,
        actor: str,
    ) -> tuple[list[GateResult], list[Approval]]:
        """Store one run of the gates; void the approvals whose evidence changed.

        An approval is void when a gate it saw now has a result with a different evidence digest.
        A ``registered`` version becomes a ``candidate``; an ``approved`` one whose approvals
        were voided goes back to ``candidate``. Returns the stored results and voided approvals.
        """
        with write_transaction(self._engine) as conn:
            self._lock_model(conn, model)
            now = _now()
            row = self._version_row(conn, model, version)
            stored: list[GateResult] = []
            for result in results:
                new_id = conn.execute(
                    gate_results.insert()
                    .values(
                        version_id=row.id,
                        gate=str(result.gate),
                        outcome=str(result.outcome),
                        evidence=dict(result.evidence),
                        evidence_digest=result.evidence_digest,
                        policy_tier=policy_tier,
                        policy_version=policy_version,
                        evaluated_by=actor,
                        evaluated_at=now,
                    )
                    .returning(gate_results.c.id)
                ).scalar_one()
                stored_row = conn.execute(
                    select(gate_results).where(gate_results.c.id == new_id)
                ).one()
                stored.append(self._result(stored_row, model, version))
                audit.append(
                    conn,
                    actor=actor,
                    action="gate.run",
                    subject_type="model_version",
                    subject_id=f"{model}/{version}",
                    details={
                        "gate": str(result.gate),
                        "outcome": str(result.outcome),
                        "evidence_digest": result.evidence_digest,
                        "policy_tier": policy_tier,
                        "policy_version": policy_version,
                        "result_id": new_id,
                    },
                )
            digests = {str(r.gate): r.evidence_digest for r in stored}
            voided = self._void_changed(conn, model, version, row.id, digests, actor, now)
            status = VersionStatus(row.status)
            if status == VersionStatus.REGISTERED:
                self._move(conn, row, model, VersionStatus.CANDIDATE, actor, "gates run")
            elif status == VersionStatus.APPROVED and voided:
                self._move(
                    conn, row, model, VersionStatus.CANDIDATE, actor, "approvals voided by re-run"
                )
            return stored, voided

    def _void_changed(
        self,
        conn: Connection,
        model: str,
        version: int,
        version_id: int,
        digests: Mapping[str, str],
        actor: str,
        now: datetime,
    ) -> list[Approval]:
        active = conn.execute(
            select(approvals).where(
                approvals.c.version_id == version_id,
                approvals.c.void.is_(False),
                approvals.c.decision == str(Decision.APPROVE),
            )
        ).all()
        voided: list[Approval] = []
        for approval in active:
            changed = sorted(
                gate
                for gate, seen in dict(approval.saw).items()
                if gate in digests and digests[gate] != seen
            )
            if not changed:
                continue
            reason = (
                f"the {', '.join(changed)} gate{'s' if len(changed) > 1 else ''} "
                f"{'were' if len(changed) > 1 else 'was'} re-run by {actor} with a different "
                "result than this approval saw"
            )
            conn.execute(
                update(approvals)
                .where(approvals.c.id == approval.id)
                .values(void=True, void_reason=reason, voided_at=now)
            )
            audit.append(
                conn,
                actor=actor,
                action="approval.void",
                subject_type="model_version",
                subject_id=f"{model}/{version}",
                details={"approval_id": approval.id, "approver": approval.actor, "reason": reason},
            )
            row = conn.execute(select(approvals).where(approvals.c.id == approval.id)).one()
            voided.append(self._approval(row, model, version))
        return voided

    # -- approvals ------------------------------------------------------------------------------

    @staticmethod
    def _approval(row: Any, model: str, version: int) -> Approval:
        return Approval(
            id=row.id,
            model=model,
            version=version,
            decision=Decision(row.decision),
            actor=row.actor,
            teams=tuple(row.teams),
            comment=row.comment,
            decided_at=codec.utc(row.decided_at),
            void=bool(row.void),
            void_reason=row.void_reason,
            saw=dict(row.saw),
        )

    def _approvals(self, conn: Connection, model: str, version: int) -> list[Approval]:
        row = self._version_row(conn, model, version)
        rows = conn.execute(
            select(approvals).where(approvals.c.version_id == row.id).order_by(approvals.c.id)
        ).all()
        return [self._approval(r, model, version) for r in rows]

    def approvals(self, model: str, version: int) -> list[Approval]:
        """Every decision on the version, oldest first (void ones included, marked)."""
        with read_transaction(self._engine) as conn:
            return self._approvals(conn, model, version)

    def candidates(self, *, limit: int) -> list[CandidateRecord]:
        """Candidate versions, longest waiting first, with their results and decisions."""
        return signoff_queue.candidates(self._engine, self._result, self._approval, limit=limit)

    def add_decision(
        self,
        model: str,
        version: int,
        *,
        decision: Decision,
        actor: str,
        teams: Sequence[str],
        comment: str,
        saw: Mapping[str, str],
        check: Callable[[Sequence[Approval], Sequence[GateResult], VersionStatus], None],
        complete: Callable[[Sequence[Approval]], bool],
    ) -> Approval:
        """Record an approval or rejection.

        ``check`` sees the version's decisions, gate results and status inside the transaction
        and raises to refuse (so two concurrent decisions cannot both slip past a rule).
        A rejection archives the version: its candidacy ends. An approval after which
        ``complete`` says sign-off is complete moves a ``candidate`` to ``approved``.
        """
        with write_transaction(self._engine) as conn:
            self._lock_model(conn, model)
            row = self._version_row(conn, model, version)
            check(
                self._approvals(conn, model, version),
                self._results(conn, model, version),
                VersionStatus(row.status),
            )
            new_id = conn.execute(
                approvals.insert()
                .values(
                    version_id=row.id,
                    decision=str(decision),
                    actor=actor,
                    teams=list(teams),
                    comment=comment,
                    saw=dict(saw),
                    decided_at=_now(),
                    void=False,
                )
                .returning(approvals.c.id)
            ).scalar_one()
            audit.append(
                conn,
                actor=actor,
                action="approval.approve" if decision == Decision.APPROVE else "approval.reject",
                subject_type="model_version",
                subject_id=f"{model}/{version}",
                details={
                    "approval_id": new_id,
                    "comment": comment,
                    "teams": list(teams),
                    "saw": dict(saw),
                    # "retired": a decision on a version to roll back to (a re-approval).
                    "version_status": str(row.status),
                },
            )
            status = VersionStatus(row.status)
            if decision == Decision.REJECT:
                self._move(
                    conn,
                    row,
                    model,
                    VersionStatus.ARCHIVED,
                    actor,
                    f"rejected by {actor}: {comment}",
                )
            elif status == VersionStatus.CANDIDATE and complete(
                self._approvals(conn, model, version)
            ):
                self._move(conn, row, model, VersionStatus.APPROVED, actor, "sign-off complete")
            stored = conn.execute(select(approvals).where(approvals.c.id == new_id)).one()
            return self._approval(stored, model, version)

    # -- promotions -----------------------------------------------------------------------------

    @staticmethod
    def _promotion(row: Any, model: str) -> Promotion:
        return Promotion(
            id=row.id,
            model=model,
            version=row.version,
            previous_version=row.previous_version,
            promoted_by=row.promoted_by,
            promoted_at=codec.utc(row.promoted_at),
            break_glass=bool(row.break_glass),
            justification=row.justification,
            policy_version=row.policy_version,
            policy_tier=row.policy_tier,
            overridden=tuple(row.overridden),
        )

    def _promotions(self, conn: Connection, model_id: int, model: str) -> list[Promotion]:
        rows = conn.execute(
            select(promotions, model_versions.c.version.label("version"))
            .join(model_versions, model_versions.c.id == promotions.c.version_id)
            .where(promotions.c.model_id == model_id)
            .order_by(promotions.c.id)
        ).all()
        return [self._promotion(r, model) for r in rows]

    def promotions(self, model: str) -> list[Promotion]:
        """Every promotion of the model, oldest first."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(models.c.id).where(models.c.name == model)).first()
            if row is None:
                raise NotFound(f"No model named {model!r}.", {"model": model})
            return self._promotions(conn, row.id, model)

    def state_token(self, model: str, version: int) -> tuple[int, int]:
        """(newest gate result id, newest decision id): changes whenever the evidence does."""
        with read_transaction(self._engine) as conn:
            return self._state_token(conn, model, version)

    def _state_token(self, conn: Connection, model: str, version: int) -> tuple[int, int]:
        row = self._version_row(conn, model, version)
        newest_gate = conn.execute(
            select(func.max(gate_results.c.id)).where(gate_results.c.version_id == row.id)
        ).scalar()
        newest_decision = conn.execute(
            select(func.max(approvals.c.id)).where(approvals.c.version_id == row.id)
        ).scalar()
        return int(newest_gate or 0), int(newest_decision or 0)

    def promote(
        self, model: str, version: int, promotion: NewPromotion, *, expect: tuple[int, int]
    ) -> Promotion:
        """Point ``production`` at the version, retire the previous one, record the promotion.

        ``expect`` is the `state_token` the caller judged the gates under; if a gate run or a
        decision landed since, nothing is written and `Conflict` asks to try again.
        """
        actor = promotion.actor
        with write_transaction(self._engine) as conn:
            model_row = self._lock_model(conn, model)
            # Taken once the model is locked: promotions of one model then get increasing
            # times in the order they commit, so no alias period ends before it starts.
            now = _now()
            row = self._version_row(conn, model, version)
            if self._state_token(conn, model, version) != expect:
                raise Conflict(
                    f"{model} version {version}'s gates or sign-off changed while it was being "
                    "promoted. Check `keel gates status` and promote again.",
                    {"model": model, "version": version},
                )
            status = VersionStatus(row.status)
            if status == VersionStatus.PRODUCTION:
                raise Conflict(
                    f"{model} version {version} is already in production.",
                    {"model": model, "version": version},
                )
            if status not in _TO_PRODUCTION:
                raise Conflict(
                    f"{model} version {version} is '{status}', which is final: it cannot be "
                    "promoted. Register a new version.",
                    {"model": model, "version": version, "status": str(status)},
                )
            open_alias = and_(
                alias_assignments.c.model_id == model_row.id,
                alias_assignments.c.alias == PRODUCTION_ALIAS,
                alias_assignments.c.cleared_at.is_(None),
            )
            previous = conn.execute(
                select(model_versions)
                .join(alias_assignments, alias_assignments.c.version_id == model_versions.c.id)
                .where(open_alias)
            ).first()
            reason = "break-glass promotion" if promotion.break_glass else "promoted"
            note = promotion.rollback
            if note is not None:
                reason = f"rolled back from version {note.from_version}: {note.reason}"
                current = None if previous is None else int(previous.version)
                if current != note.from_version:
                    raise Conflict(
                        f"{model}'s production version changed while it was being rolled back "
                        f"(now {current}). Check `keel models show {model}` and try again.",
                        {"model": model, "production": current},
                    )
            if previous is not None:
                conn.execute(
                    update(alias_assignments)
                    .where(open_alias)
                    .values(cleared_at=now, cleared_by=actor)
                )
                if VersionStatus(previous.status) == VersionStatus.PRODUCTION:
                    self._move(
                        conn,
                        previous,
                        model,
                        VersionStatus.RETIRED,
                        actor,
                        f"replaced by version {version}",
                    )
            self._walk(conn, model, version, _TO_PRODUCTION[status], actor, reason)
            conn.execute(
                alias_assignments.insert().values(
                    model_id=model_row.id,
                    alias=PRODUCTION_ALIAS,
                    version_id=row.id,
                    set_by=actor,
                    set_at=now,
                )
            )
            previous_version = None if previous is None else int(previous.version)
            audit.append(
                conn,
                actor=actor,
                action="alias.set",
                subject_type="model",
                subject_id=model,
                details={
                    "alias": PRODUCTION_ALIAS,
                    "version": version,
                    "previous_version": previous_version,
                    "via": "governance.rollback" if note else "governance.promote",
                },
            )
            new_id = conn.execute(
                promotions.insert()
                .values(
                    model_id=model_row.id,
                    version_id=row.id,
                    previous_version=previous_version,
                    promoted_by=actor,
                    promoted_at=now,
                    break_glass=promotion.break_glass,
                    justification=promotion.justification,
                    overridden=list(promotion.overridden),
                    policy_tier=promotion.policy_tier,
                    policy_version=promotion.policy_version,
                )
                .returning(promotions.c.id)
            ).scalar_one()
            details: dict[str, Any] = {
                "promotion_id": new_id,
                "previous_version": previous_version,
                "policy_tier": promotion.policy_tier,
                "policy_version": promotion.policy_version,
                "break_glass": promotion.break_glass,
            }
            if promotion.break_glass:
                details |= {
                    "justification": promotion.justification,
                    "overridden": list(promotion.overridden),
                }
            action = "governance.break_glass" if promotion.break_glass else "governance.promote"
            if note is not None:
                action = "governance.rollback"
                details |= {"reason": note.reason, "incident_id": note.incident_id}
                conn.execute(
                    rollbacks.insert().values(
                        promotion_id=new_id,
                        model_id=model_row.id,
                        from_version=note.from_version,
                        to_version=version,
                        reason=note.reason,
                        incident_id=note.incident_id,
                        rolled_back_by=actor,
                        rolled_back_at=now,
                    )
                )
            audit.append(
                conn,
                actor=actor,
                action=action,
                subject_type="model_version",
                subject_id=f"{model}/{version}",
                details=details,
            )
            return next(p for p in self._promotions(conn, model_row.id, model) if p.id == new_id)
