"""Between the wire format (keel.schemas) and the domain's entities."""

from __future__ import annotations

from keel.domain import registry as d
from keel.domain.permissions import Principal
from keel.domain.signature import Column, Signature
from keel.domain.tokens import TokenInfo
from keel.schemas import identity
from keel.schemas import registry as s


def team_out(team: d.Team) -> s.TeamOut:
    return s.TeamOut(name=team.name, description=team.description, created_at=team.created_at)


def model_in(body: s.ModelIn) -> d.Model:
    return d.Model(
        name=body.name,
        team=body.team,
        owner=body.owner,
        description=body.description,
        use_case=body.use_case,
        tags=tuple(body.tags),
    )


def model_changes(body: s.ModelPatch) -> d.ModelChanges:
    return d.ModelChanges(
        team=body.team,
        owner=body.owner,
        description=body.description,
        use_case=body.use_case,
        tags=tuple(body.tags) if body.tags is not None else None,
    )


def model_out(model: d.Model) -> s.ModelOut:
    assert model.created_at is not None and model.updated_at is not None
    return s.ModelOut(
        name=model.name,
        team=model.team,
        owner=model.owner,
        description=model.description,
        use_case=model.use_case,
        tags=list(model.tags),
        risk_tier=model.risk_tier,
        latest_version=model.latest_version,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


def version_draft(body: s.VersionIn) -> d.VersionDraft:
    lineage = body.lineage
    fingerprint = lineage.training_data
    return d.VersionDraft(
        signature=Signature(
            tuple(Column(c.name, c.dtype, c.role, c.nullable) for c in body.signature.columns)
        ),
        description=body.description,
        params=dict(body.params),
        metrics=dict(body.metrics),
        lineage=d.Lineage(
            training_data=d.DatasetFingerprint(
                sha256=fingerprint.sha256,
                rows=fingerprint.rows,
                columns=tuple((c.name, c.dtype) for c in fingerprint.columns),
            )
            if fingerprint
            else None,
            git_commit=lineage.git_commit,
            git_repo_url=lineage.git_repo_url,
            git_dirty=lineage.git_dirty,
            parent_version=lineage.parent_version,
        ),
        environment=d.Environment(
            python_version=body.environment.python_version,
            packages=dict(body.environment.packages),
        ),
        card=d.ModelCard(**body.card.model_dump()),
    )


def version_out(version: d.ModelVersion) -> s.VersionOut:
    lineage = version.lineage
    fingerprint = lineage.training_data
    return s.VersionOut(
        model=version.model,
        version=version.version,
        status=version.status,
        description=version.description,
        artifact=s.ArtifactOut(
            sha256=version.artifact.sha256,
            size=version.artifact.size,
            flavor=version.artifact.flavor,
            filename=version.artifact.filename,
        ),
        signature=s.SignatureSpec(
            columns=[
                s.ColumnSpec(name=c.name, dtype=c.dtype, role=c.role, nullable=c.nullable)
                for c in version.signature.columns
            ]
        ),
        params=dict(version.params),
        metrics=dict(version.metrics),
        lineage=s.LineageSpec(
            training_data=s.DatasetFingerprintSpec(
                sha256=fingerprint.sha256,
                rows=fingerprint.rows,
                columns=[s.ColumnSchema(name=n, dtype=t) for n, t in fingerprint.columns],
            )
            if fingerprint
            else None,
            git_commit=lineage.git_commit,
            git_repo_url=lineage.git_repo_url,
            git_dirty=lineage.git_dirty,
            parent_version=lineage.parent_version,
        ),
        environment=s.EnvironmentSpec(
            python_version=version.environment.python_version,
            packages=dict(version.environment.packages),
        ),
        card=s.ModelCardSpec(**vars(version.card)),
        aliases=list(version.aliases),
        created_by=version.created_by,
        created_at=version.created_at,
    )


def alias_out(assignment: d.AliasAssignment) -> s.AliasOut:
    return s.AliasOut(
        model=assignment.model,
        alias=assignment.alias,
        version=assignment.version,
        set_by=assignment.set_by,
        set_at=assignment.set_at,
        cleared_by=assignment.cleared_by,
        cleared_at=assignment.cleared_at,
    )


def principal_out(principal: Principal) -> identity.PrincipalOut:
    return identity.PrincipalOut(
        name=principal.name,
        kind=principal.kind,
        grants=[identity.GrantSpec(role=g.role, team=g.team) for g in principal.grants],
    )


def token_out(info: TokenInfo) -> identity.TokenOut:
    return identity.TokenOut(
        id=info.id,
        principal=info.principal,
        name=info.name,
        hint=info.hint,
        created_at=info.created_at,
        expires_at=info.expires_at,
        revoked_at=info.revoked_at,
        last_used_at=info.last_used_at,
    )
