"""How the CLI shows things: Rich tables for people, plain JSON for scripts and pipes.

Renderers return Rich renderables and never print, so tests render them into
``Console(file=io.StringIO(), width=80)``. Colour follows Rich, which honours ``NO_COLOR``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from keel.domain.model_formats import loading_note
from keel.errors import KeelError
from keel.schemas import (
    AliasOut,
    AuditEventOut,
    AuditVerification,
    GrantSpec,
    ModelOut,
    PrincipalOut,
    TeamOut,
    TokenOut,
    VersionOut,
)


def wants_json(flag: bool, console: Console) -> bool:
    """JSON when asked for, or when stdout is a pipe or file rather than a person's terminal."""
    return flag or not console.is_terminal


def emit_json(console: Console, data: BaseModel | Sequence[BaseModel]) -> None:
    """Write ``data`` as indented JSON, with no colour or markup, to the console's file."""
    payload: Any = (
        data.model_dump(mode="json")
        if isinstance(data, BaseModel)
        else [item.model_dump(mode="json") for item in data]
    )
    console.file.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    console.file.flush()


def show(flag: bool, data: BaseModel | Sequence[BaseModel], render: Callable[[], Any]) -> None:
    """Print ``data`` as JSON (see `wants_json`), else what ``render`` returns, to stdout."""
    console = Console()
    if wants_json(flag, console):
        emit_json(console, data)
    else:
        console.print(render())


def error_line(exc: KeelError) -> Text:
    """The error as one line (no markup interpretation: messages may hold brackets)."""
    message = " ".join(str(exc.message or exc.code).split())
    return Text.assemble(("Error: ", "bold red"), message)


def when(moment: datetime | None) -> str:
    """A timestamp to the minute, in UTC: ``2026-01-31 14:05``."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def size(n: int) -> str:
    """Bytes for people: ``1.9 kB``.

    >>> size(1887), size(12), size(5 * 1024**3)
    ('1.9 kB', '12 B', '5.4 GB')
    """
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def teams_table(teams: Iterable[TeamOut]) -> Table:
    table = Table("Team", "Description", "Created", title="Teams", title_justify="left")
    for team in teams:
        table.add_row(team.name, team.description, when(team.created_at))
    return table


def models_table(models: Iterable[ModelOut]) -> Table:
    table = Table(
        "Model",
        "Team",
        "Owner",
        "Latest",
        "Risk tier",
        "Tags",
        title="Models",
        title_justify="left",
    )
    for model in models:
        table.add_row(
            model.name,
            model.team,
            model.owner,
            f"v{model.latest_version}" if model.latest_version else "-",
            str(model.risk_tier),
            ", ".join(model.tags),
        )
    return table


def _fields(rows: Iterable[tuple[str, RenderableType]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def model_details(model: ModelOut) -> Table:
    return _fields(
        [
            ("Model", model.name),
            ("Team", model.team),
            ("Owner", model.owner),
            ("Risk tier", str(model.risk_tier)),
            ("Latest version", str(model.latest_version) if model.latest_version else "none"),
            ("Tags", ", ".join(model.tags) or "-"),
            ("Use case", model.use_case or "-"),
            ("Description", model.description or "-"),
            ("Created", when(model.created_at)),
            ("Updated", when(model.updated_at)),
        ]
    )


def versions_table(model: str, versions: Iterable[VersionOut]) -> Table:
    table = Table(title=f"Versions of {model}", title_justify="left")
    table.add_column("Version", justify="right")
    table.add_column("Status")
    table.add_column("Aliases")
    table.add_column("Artifact", overflow="fold")
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    table.add_column("By")
    for version in versions:
        table.add_row(
            str(version.version),
            str(version.status),
            ", ".join(version.aliases),
            version.artifact.filename,
            size(version.artifact.size),
            when(version.created_at),
            version.created_by,
        )
    return table


def _signature(version: VersionOut) -> str:
    roles = Counter(str(column.role) for column in version.signature.columns)
    if not roles:
        return "not recorded"
    parts = ", ".join(f"{count} {role.replace('_', ' ')}" for role, count in roles.items())
    return f"{len(version.signature.columns)} columns ({parts})"


def _lineage(version: VersionOut) -> str:
    lineage = version.lineage
    parts = []
    if lineage.training_data is not None:
        data = lineage.training_data
        parts.append(f"data {data.sha256[:12]} ({data.rows} rows, {len(data.columns)} columns)")
    if lineage.git_commit is not None:
        dirty = " with uncommitted changes" if lineage.git_dirty else ""
        where = f" in {lineage.git_repo_url}" if lineage.git_repo_url else ""
        parts.append(f"git {lineage.git_commit[:12]}{dirty}{where}")
    if lineage.parent_version is not None:
        parts.append(f"from version {lineage.parent_version}")
    return "\n".join(parts) or "not recorded"


def _numbers(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items()) or "-"


def version_details(version: VersionOut) -> Group:
    environment = version.environment
    fields = _fields(
        [
            ("Model", version.model),
            ("Version", str(version.version)),
            ("Status", str(version.status)),
            ("Aliases", ", ".join(version.aliases) or "-"),
            (
                "Artifact",
                f"{version.artifact.filename}, {size(version.artifact.size)}, "
                f"{version.artifact.flavor} ({loading_note(version.artifact.flavor)})",
            ),
            ("SHA-256", version.artifact.sha256),
            ("Signature", _signature(version)),
            ("Metrics", _numbers(version.metrics)),
            ("Params", _numbers(version.params)),
            ("Lineage", _lineage(version)),
            (
                "Python",
                f"{environment.python_version or '?'} "
                f"({len(environment.packages)} packages recorded)",
            ),
            ("Description", version.description or "-"),
            ("Created", f"{when(version.created_at)} by {version.created_by}"),
        ]
    )
    if not version.signature.columns:
        return Group(fields)
    columns = Table("Column", "Type", "Role", "Nullable", title="Signature", title_justify="left")
    for column in version.signature.columns:
        columns.add_row(
            column.name, str(column.dtype), str(column.role), "yes" if column.nullable else "no"
        )
    return Group(fields, Text(), columns)


def aliases_table(aliases: Iterable[AliasOut], *, history: bool = False) -> Table:
    headers = ["Alias", "Version", "Set", "By"]
    if history:
        headers += ["Cleared", "By"]
    table = Table(*headers, title="Alias history" if history else "Aliases", title_justify="left")
    for alias in aliases:
        row = [alias.alias, str(alias.version), when(alias.set_at), alias.set_by]
        if history:
            row += [when(alias.cleared_at) or "current", alias.cleared_by or ""]
        table.add_row(*row)
    return table


def roles(grants: Iterable[GrantSpec]) -> str:
    """Grants for people: ``admin`` or ``contributor in risk, viewer in growth``."""
    return (
        ", ".join(str(g.role) if g.team is None else f"{g.role} in {g.team}" for g in grants)
        or "none"
    )


def principal_details(principal: PrincipalOut) -> Table:
    return _fields(
        [
            ("Name", principal.name),
            ("Kind", str(principal.kind)),
            ("Roles", roles(principal.grants)),
        ]
    )


def users_table(principals: Iterable[PrincipalOut]) -> Table:
    table = Table("Name", "Kind", "Roles", title="Users", title_justify="left")
    for principal in principals:
        table.add_row(principal.name, str(principal.kind), roles(principal.grants))
    return table


def token_state(token: TokenOut, moment: datetime | None = None) -> str:
    """``active``, ``revoked`` or ``expired`` at ``moment`` (default now)."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= (moment or datetime.now(UTC)):
        return "expired"
    return "active"


def tokens_table(tokens: Iterable[TokenOut]) -> Table:
    """Tokens by their hint only: the secret itself is never shown again after creation."""
    table = Table(title="Tokens", title_justify="left")
    table.add_column("ID", justify="right")
    for header in ("Owner", "Name", "Token", "State", "Created", "Expires", "Last used"):
        table.add_column(header, no_wrap=header in ("Token", "Created"))
    for token in tokens:
        table.add_row(
            str(token.id),
            token.principal,
            token.name,
            token.hint,
            token_state(token),
            when(token.created_at),
            when(token.expires_at) or "never",
            when(token.last_used_at) or "never",
        )
    return table


def audit_table(events: Iterable[AuditEventOut]) -> Table:
    table = Table(title="Audit trail (UTC)", title_justify="left")
    table.add_column("Seq", justify="right")
    table.add_column("At", no_wrap=True)
    table.add_column("Actor")
    table.add_column("Action")
    table.add_column("Subject", overflow="fold")
    table.add_column("Details", overflow="fold")
    for event in events:
        details = ", ".join(
            f"{key}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
            for key, value in event.details.items()
        )
        table.add_row(
            str(event.seq),
            event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            event.actor,
            event.action,
            f"{event.subject_type}:{event.subject_id}",
            details,
        )
    return table


def verification_line(result: AuditVerification) -> Text:
    """One line: ``intact: 12 events, head 12:ab12...``, or where and why the chain breaks."""
    if result.intact:
        extra = ""
        if result.checkpoint_seq is not None and result.checkpoint_at is not None:
            at = result.checkpoint_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
            extra += f", signed checkpoint at event {result.checkpoint_seq} ({at} UTC)"
        if result.unsigned_legacy:
            extra += f", {result.unsigned_legacy} unsigned legacy events before signing began"
        return Text.assemble(
            ("intact", "bold green"),
            f": {result.checked} events, head {result.head_seq}:{result.head_hash}{extra}",
        )
    verdict = f"NOT intact ({result.kind})" if result.kind else "NOT intact"
    if result.broken_seq is None:
        return Text.assemble((verdict, "bold red"), f": {result.reason}")
    return Text.assemble(
        (verdict, "bold red"),
        f": the audit trail breaks at seq {result.broken_seq}: {result.reason}; "
        f"the {result.checked} events before it check out",
    )
