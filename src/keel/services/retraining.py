"""Continuous training: a retraining job per model, its triggers, and what its runs produce.

A model's job is either

- a **command** template, which **only an admin defines** (it runs code on the server): a list of
  arguments run in the model sandbox (`keel.services.sandbox`, no shell, no network, none of
  Keel's data directory, environment or tokens) with a wall-clock timeout and a memory limit.
  The sandbox sees the window's data file (read-only), the run's output directory (its only
  writable place, also its cwd) and the ``code_paths`` the admin listed (read-only: the
  directory holding ``train.py``, say), besides the system and Python installation.
  Placeholders: ``{model}``, ``{data}`` (a Parquet file: the window's labelled predictions of the
  production version, exported with DuckDB), ``{output_dir}``, ``{window_start}``,
  ``{window_end}`` (ISO 8601), ``{incident}`` (the incident id, or empty) and ``{run}`` (the
  retrain run id). The same values are in the environment as ``KEEL_RETRAIN_*``. The job writes
  the trained artifact (one file) to ``{output_dir}``, optionally with ``metadata.json``
  (``metrics``, ``params``, ``description``, ``environment``), and Keel registers it as the next
  version itself, with lineage from the run (parent = the production version; params
  ``retrain_run``, ``retrain_incident``, ``retrain_window_start``, ``retrain_window_end``). A job
  that writes no artifact has failed.
- a **webhook**, which the model team's writers may set: Keel emits ``retrain.requested``
  through the notifications outbox (signed, retried); the receiver retrains and registers
  through the API.

A command run fails before anything starts when the window holds no labelled predictions. Its
output is kept (the last `TAIL_CHARS` characters) with secrets redacted
(`keel.domain.redaction`), and only the model's team (and admins) may read it.

Triggers: a playbook (``retrain`` action, with the incident), a schedule (the worker's
`run_due`), or a writer of the team (`keel retrain MODEL`). Every run is recorded
(``retrain_runs``: status ``succeeded``, ``failed``, ``timed_out`` or ``sent``, with a
``reason``) and audited; a version the job registers gets the production version's evaluation
data and its gates run at once (`Governance.run_gates`).

`trigger` returns when the job finished or timed out; the API and the schedule queue it as a
job (kind ``retrain``, `keel.services.job_kinds`), so callers never wait on it over HTTP.
"""

from __future__ import annotations

import json
import logging
import os
import string
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from keel.config import ADMIN_TOKEN_FILE
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.redaction import redact, secret_values
from keel.domain.registry import Environment, Lineage, Model, ModelVersion, VersionDraft
from keel.domain.signature import ColumnRole
from keel.errors import Conflict, InvalidInput, KeelError, NotFound, PermissionDenied
from keel.services.governance import Governance
from keel.services.registry import Registry
from keel.services.sandbox import SandboxLimits, SandboxUnavailable, run_sandboxed
from keel.services.telemetry import Telemetry
from keel.store.sql.playbooks import RetrainingJob, RetrainRun, SqlPlaybookStore

PLACEHOLDERS = frozenset(
    {"model", "data", "output_dir", "window_start", "window_end", "incident", "run"}
)
TRIGGERS = frozenset({"playbook", "schedule", "manual"})
RUNNABLE = frozenset({"command", "webhook"})  # not "unreviewed" (see migration 0012)
MAX_TIMEOUT_S = 24 * 3600
MAX_WINDOW_DAYS = 366
MAX_CODE_PATHS = 20
MEMORY_MB = (256, 256 * 1024)
TAIL_CHARS = 4000
METADATA_FILE = "metadata.json"
WINDOW_FILE = "window.parquet"
log = logging.getLogger("keel.retraining")


class Emitter(Protocol):
    """What retraining needs of the notifications service."""

    def emit(self, event_type: str, payload: Mapping[str, Any]) -> list[int]: ...

    def signing_secrets(self) -> list[str]:
        """The webhook signing secrets, so a job's output never shows one."""
        ...


def _check_command(command: Sequence[str]) -> tuple[str, ...]:
    if not command or not all(isinstance(a, str) and a for a in command):
        raise InvalidInput(
            "The 'command' must be a non-empty list of non-empty arguments, e.g. "
            '["python", "/srv/training/credit/train.py", "--data", "{data}", "--out", '
            '"{output_dir}"].',
            {"field": "command"},
        )
    for index, argument in enumerate(command):
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(argument) if f is not None}
        except ValueError as exc:
            raise InvalidInput(
                f"command[{index}] is not a valid template ({exc}); write literal braces as "
                "{{ and }}.",
                {"field": f"command[{index}]"},
            ) from None
        unknown = sorted(fields - PLACEHOLDERS)
        if unknown:
            raise InvalidInput(
                f"command[{index}] uses the unknown placeholder {{{unknown[0]}}}; placeholders "
                f"are {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}.",
                {"field": f"command[{index}]"},
            )
    return tuple(command)


def _check_code_paths(paths: Sequence[str], data_dir: Path) -> tuple[str, ...]:
    """Absolute, existing paths that neither hold nor sit inside Keel's data directory."""
    if len(paths) > MAX_CODE_PATHS:
        raise InvalidInput(
            f"The 'code_paths' may list at most {MAX_CODE_PATHS} paths.", {"field": "code_paths"}
        )
    checked: list[str] = []
    for index, given in enumerate(paths):
        field = f"code_paths[{index}]"
        path = Path(given)
        if not path.is_absolute():
            raise InvalidInput(
                f"{field} must be an absolute path (the sandbox binds it at the same place); "
                f"got {given!r}.",
                {"field": field},
            )
        resolved = path.resolve()
        if not resolved.exists():
            raise InvalidInput(
                f"{field}: nothing at {given} on the Keel server; give the directory that "
                "holds the training code.",
                {"field": field},
            )
        if resolved == data_dir or data_dir in resolved.parents or resolved in data_dir.parents:
            raise InvalidInput(
                f"{field}: {given} overlaps Keel's data directory {data_dir} (tokens, database), "
                "which a job may never see; keep training code in a directory of its own.",
                {"field": field},
            )
        checked.append(str(resolved))
    return tuple(checked)


def _tail(text: str) -> str:
    return text[-TAIL_CHARS:]


class Retraining:
    """Retraining jobs and their runs (Backend field ``retraining``)."""

    def __init__(
        self,
        store: SqlPlaybookStore,
        registry: Registry,
        governance: Governance,
        telemetry: Telemetry,
        runs_dir: Path,
        notifications: Emitter | None = None,
        *,
        data_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.governance = governance
        self.telemetry = telemetry
        self.runs_dir = runs_dir
        self.notifications = notifications
        # Keel's data directory: never visible to a job; its admin token is redacted from output.
        self.data_dir = (data_dir or runs_dir.parent).resolve()

    # -- the job definition ---------------------------------------------------------------------

    def set_job(
        self,
        by: Principal,
        model: str,
        *,
        command: Sequence[str] | None = None,
        webhook: bool = False,
        code_paths: Sequence[str] = (),
        memory_mb: int = 4096,
        timeout_s: int = 3600,
        window_days: int = 7,
        schedule_every_s: int | None = None,
    ) -> RetrainingJob:
        """Define (or replace) the model's retraining job: a ``command`` (admins only) or a
        ``webhook`` (writers of the model's team)."""
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        if (command is not None) == webhook:
            raise InvalidInput(
                "Give exactly one of 'command' (run in the sandbox; admins only) or 'webhook' "
                "(emit retrain.requested).",
                {"field": "command"},
            )
        if command is not None and not by.is_admin:
            raise PermissionDenied(
                f"Only an admin may define a command retraining job (it runs code on the Keel "
                f'server); {by.name!r} may set a webhook job instead ({{"webhook": true}}, '
                f"`keel retraining set {owner.name} --webhook`), or ask an admin to set the "
                "command.",
                {"permission": "admin", "team": owner.team, "needs": "admin", "field": "command"},
            )
        if webhook and code_paths:
            raise InvalidInput(
                "The 'code_paths' belong to a command job; a webhook job runs nothing here.",
                {"field": "code_paths"},
            )
        if not 1 <= timeout_s <= MAX_TIMEOUT_S:
            raise InvalidInput(
                f"The 'timeout_s' must be 1-{MAX_TIMEOUT_S} seconds.", {"field": "timeout_s"}
            )
        if not MEMORY_MB[0] <= memory_mb <= MEMORY_MB[1]:
            raise InvalidInput(
                f"The 'memory_mb' must be {MEMORY_MB[0]}-{MEMORY_MB[1]}.", {"field": "memory_mb"}
            )
        if not 1 <= window_days <= MAX_WINDOW_DAYS:
            raise InvalidInput(
                f"The 'window_days' must be 1-{MAX_WINDOW_DAYS}.", {"field": "window_days"}
            )
        if schedule_every_s is not None and schedule_every_s < 60:
            raise InvalidInput(
                "The 'schedule_every_s' must be at least 60 seconds (or null for no schedule).",
                {"field": "schedule_every_s"},
            )
        return self.store.put_job(
            RetrainingJob(
                model=owner.name,
                kind="webhook" if webhook else "command",
                command=() if command is None else _check_command(command),
                timeout_s=timeout_s,
                window_days=window_days,
                schedule_every_s=schedule_every_s,
                updated_by=by.name,
                updated_at=datetime.now(UTC),
                code_paths=_check_code_paths(code_paths, self.data_dir),
                memory_mb=memory_mb,
            )
        )

    def job(self, model: str) -> RetrainingJob:
        """The model's retraining job, or `NotFound` saying how to define one."""
        name = check_name(model, "model")
        found = self.store.job(name)
        if found is None:
            raise NotFound(
                f"{name} has no retraining job. Define one with `keel retraining set {name}` "
                f"(`PUT /api/v1/models/{name}/retraining-job`).",
                {"model": name},
            )
        return found

    def runs(self, by: Principal, model: str) -> list[RetrainRun]:
        """Every retrain run of the model, oldest first: for the model's team and admins only,
        since a run's output is the job's own."""
        owner = self.registry.get_model(check_name(model, "model"))
        if not by.is_admin and by.role_in(owner.team) is None:
            raise PermissionDenied(
                f"The retrain runs of {owner.name} (and their output) are visible to team "
                f"{owner.team!r} only; {by.name!r} has no role there. Ask an admin for one "
                "(keel users grant).",
                {"permission": "read", "team": owner.team, "needs": "viewer"},
            )
        return self.store.retrain_runs(owner.name)

    # -- running --------------------------------------------------------------------------------

    def _production(self, model: str) -> int | None:
        for alias in self.registry.current_aliases(model):
            if alias.alias == "production":
                return alias.version
        return None

    def _newest_version(self, model: str) -> int:
        newest, cursor = 0, None
        while True:
            page = self.registry.list_versions(model, cursor=cursor)
            newest = max([newest, *(v.version for v in page.items)])
            if page.next_cursor is None:
                return newest
            cursor = page.next_cursor

    def _export_window(
        self, model: str, version: int, start: datetime, end: datetime, path: Path
    ) -> int:
        """Write the window's labelled predictions (with the feature columns) to Parquet."""
        found = self.registry.get_version(model, version)
        columns = tuple(
            c.name
            for c in found.signature.columns
            if c.role in (ColumnRole.FEATURE, ColumnRole.PROTECTED_ATTRIBUTE)
        )
        table = self.telemetry.labelled_predictions(model, version, start, end, columns)
        pq.write_table(table, path)
        return int(table.num_rows)

    def _secrets(self) -> list[str]:
        """The values a job's output must never show (patterns are in `redact` itself)."""
        found = secret_values(os.environ)
        token_file = self.data_dir / ADMIN_TOKEN_FILE
        if token_file.is_file():
            found.append(token_file.read_text(encoding="utf-8").strip())
        if self.notifications is not None:
            found.extend(self.notifications.signing_secrets())
        return found

    def check_trigger(
        self, by: Principal, model: str, trigger: str = "manual"
    ) -> tuple[Model, RetrainingJob]:
        """Raise unless ``by`` may run the model's retraining job now (checked before a run is
        queued, so a refused request queues nothing); the model and its job."""
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        if trigger not in TRIGGERS:
            raise InvalidInput(
                f"The 'trigger' must be one of {', '.join(sorted(TRIGGERS))}.",
                {"field": "trigger"},
            )
        job = self.job(owner.name)
        if job.kind not in RUNNABLE:
            raise Conflict(
                f"The command retraining job of {owner.name} was defined by {job.updated_by!r} "
                "before only admins could define commands, so it does not run. An admin must "
                f"set it again (`keel retraining set {owner.name} --command ...`), or a writer "
                f"may replace it with a webhook job (`keel retraining set {owner.name} "
                "--webhook`).",
                {"model": owner.name, "kind": job.kind},
            )
        return owner, job

    def trigger(
        self,
        by: Principal,
        model: str,
        *,
        trigger: str = "manual",
        incident_id: int | None = None,
        now: datetime | None = None,
        job_key: str | None = None,
        before_effect: Callable[[], None] | None = None,
    ) -> RetrainRun:
        """Run the model's retraining job on the latest window; return the recorded run.

        ``job_key`` makes a retried job idempotent: the version a run registers is tagged with
        it (param ``keel_job``), and a later attempt with the same key returns that run instead
        of training and registering again. ``before_effect`` is called right before the version
        is registered (the job's lease check).
        """
        owner, job = self.check_trigger(by, model, trigger)
        if job_key is not None:
            done = self._done_by(owner.name, job_key)
            if done is not None:
                return done
        end = now or datetime.now(UTC)
        start = end - timedelta(days=job.window_days)
        production = self._production(owner.name)
        run = self.store.start_retrain(
            model=owner.name,
            trigger=trigger,
            incident_id=incident_id,
            window_start=start,
            window_end=end,
            runs_dir=str(self.runs_dir.resolve() / owner.name),
            actor=by.name,
        )
        run_dir = Path(run.data_dir)
        output = run_dir / "output"
        output.mkdir(parents=True, exist_ok=True)
        data = run_dir / WINDOW_FILE
        # The window of the version in production (else the newest version).
        source = production or self._newest_version(owner.name)
        try:
            rows = self._export_window(owner.name, source, start, end, data)
        except KeelError as exc:
            return self._finish(by, run, "failed", reason=f"exporting the window failed: {exc}")
        values = {
            "model": owner.name,
            "data": str(data),
            "output_dir": str(output),
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "incident": "" if incident_id is None else str(incident_id),
            "run": str(run.id),
        }
        if job.kind == "webhook":
            if self.notifications is None:
                return self._finish(by, run, "failed", reason="notifications are not configured")
            self.notifications.emit(
                "retrain.requested", {**values, "trigger": trigger, "run_id": run.id, "rows": rows}
            )
            return self._finish(by, run, "sent", reason="retrain.requested emitted")
        if rows == 0:
            which = "production version" if production is not None else "newest version"
            return self._finish(
                by,
                run,
                "failed",
                reason=f"no labelled predictions of {which} {source} between "
                f"{start.isoformat()} and {end.isoformat()}: nothing to train on, so the "
                "command did not run",
            )
        return self._run_command(
            by, job, run, values, data, output, production, job_key, before_effect
        )

    def _done_by(self, model: str, job_key: str) -> RetrainRun | None:
        """The run that already registered a version for ``job_key``, if any."""
        tagged: ModelVersion | None = None
        cursor: str | None = None
        while tagged is None:
            page = self.registry.list_versions(model, cursor=cursor)
            tagged = next((v for v in page.items if v.params.get("keel_job") == job_key), None)
            cursor = page.next_cursor
            if cursor is None:
                break
        if tagged is None:
            return None
        runs = self.store.retrain_runs(model)
        by_id = {run.id: run for run in runs}
        # The run that registered it (its record may not say so yet, if the worker was killed
        # between registering and recording: the version's params name the run).
        run_id = tagged.params.get("retrain_run")
        return by_id.get(run_id) if isinstance(run_id, int) else None

    def _run_command(
        self,
        by: Principal,
        job: RetrainingJob,
        run: RetrainRun,
        values: Mapping[str, str],
        data: Path,
        output: Path,
        production: int | None,
        job_key: str | None = None,
        before_effect: Callable[[], None] | None = None,
    ) -> RetrainRun:
        argv = [argument.format(**values) for argument in job.command]
        env = {f"KEEL_RETRAIN_{k.upper()}": v for k, v in values.items()}
        try:
            done = run_sandboxed(
                argv,
                workdir=output,
                limits=SandboxLimits(wall_seconds=job.timeout_s, memory_mb=job.memory_mb),
                readonly=[data, *(Path(p) for p in job.code_paths)],
                env=env,
                hide=[self.data_dir],
            )
        except SandboxUnavailable as exc:
            return self._finish(by, run, "failed", reason=exc.message)
        tail = _tail(redact(done.output.decode("utf-8", errors="replace"), self._secrets()))
        if done.timed_out:
            reason = f"killed after {job.timeout_s}s (the job's timeout_s)"
            return self._finish(by, run, "timed_out", None, tail, reason=reason)
        if done.returncode != 0:
            reason = f"the command exited with {done.returncode}"
            return self._finish(by, run, "failed", done.returncode, tail, reason=reason)
        if before_effect is not None:
            before_effect()
        try:
            version = self._register(by, run, output, production, job_key)
        except KeelError as exc:
            reason = f"registering the output failed: {exc.message}"
            return self._finish(by, run, "failed", done.returncode, tail, reason=reason)
        if version is None:
            reason = f"the job wrote no artifact to {output}"
            return self._finish(by, run, "failed", done.returncode, tail, reason=reason)
        reason = f"registered version {version}"
        finished = self._finish(by, run, "succeeded", done.returncode, tail, version, reason)
        self._prepare_and_gate(by, run.model, production, version)
        return finished

    def _finish(
        self,
        by: Principal,
        run: RetrainRun,
        status: str,
        exit_code: int | None = None,
        tail: str = "",
        version: int | None = None,
        reason: str = "",
    ) -> RetrainRun:
        return self.store.finish_retrain(
            run.id,
            status=status,
            exit_code=exit_code,
            output_tail=tail,
            registered_version=version,
            actor=by.name,
            reason=redact(reason, self._secrets()),
        )

    def _register(
        self,
        by: Principal,
        run: RetrainRun,
        output: Path,
        production: int | None,
        job_key: str | None = None,
    ) -> int | None:
        """Register the one artifact the job wrote (None when it wrote none)."""
        model = run.model
        artifacts = sorted(p for p in output.iterdir() if p.is_file() and p.name != METADATA_FILE)
        if not artifacts:
            return None
        if len(artifacts) > 1:
            raise InvalidInput(
                f"The job wrote {len(artifacts)} files to its output directory; write one "
                f"artifact (plus an optional {METADATA_FILE}).",
                {"field": "output_dir", "files": [p.name for p in artifacts]},
            )
        meta: dict[str, Any] = {}
        meta_path = output / METADATA_FILE
        if meta_path.exists():
            try:
                meta = dict(json.loads(meta_path.read_text()))
            except (ValueError, TypeError) as exc:
                raise InvalidInput(
                    f"{METADATA_FILE} is not a JSON object: {exc}", {"field": METADATA_FILE}
                ) from None
        parent: ModelVersion | None = (
            None if production is None else self.registry.get_version(model, production)
        )
        environment = parent.environment if parent else Environment()
        if isinstance(meta.get("environment"), Mapping):
            given = meta["environment"]
            environment = Environment(
                given.get("python_version"), dict(given.get("packages") or {})
            )
        params = {
            k: v
            for k, v in dict(meta.get("params") or {}).items()
            if isinstance(v, str | int | float | bool)
        }
        draft = VersionDraft(
            signature=parent.signature if parent else VersionDraft().signature,
            description=str(meta.get("description") or f"Retrained by retrain run {run.id}."),
            params={
                **params,
                "retrain_run": run.id,
                "retrain_trigger": run.trigger,
                "retrain_incident": run.incident_id,
                "retrain_window_start": run.window_start.isoformat(),
                "retrain_window_end": run.window_end.isoformat(),
                **({} if job_key is None else {"keel_job": job_key}),
            },
            metrics={k: float(v) for k, v in dict(meta.get("metrics") or {}).items()},
            lineage=Lineage(parent_version=production),
            environment=environment,
            card=parent.card if parent else VersionDraft().card,
        )
        with artifacts[0].open("rb") as stream:
            found = self.registry.register_version(by, model, stream, artifacts[0].name, draft)
        return found.version

    def _prepare_and_gate(
        self, by: Principal, model: str, production: int | None, version: int
    ) -> None:
        """Give the new version the production version's evaluation data; run its gates."""
        evaluation = self.governance.evaluation
        if production is not None and evaluation.dataset(model, version) is None:
            dataset = evaluation.dataset(model, production)
            if dataset is not None:
                with self.registry.artifacts.open_verified(dataset.sha256) as stream:
                    evaluation.attach_dataset(
                        by, model, version, stream, f"evaluation.{dataset.format}"
                    )
        self.governance.run_gates(by, model, version)

    def run_due(self, by: Principal, *, now: datetime | None = None) -> list[RetrainRun]:
        """The schedule trigger: run every scheduled job whose interval has passed (a command
        job awaiting an admin's review is skipped, so it never blocks the others)."""
        moment = now or datetime.now(UTC)
        ran: list[RetrainRun] = []
        for job in self.store.scheduled_jobs():
            assert job.schedule_every_s is not None
            if job.kind not in RUNNABLE:
                log.warning("retraining job of %s is %s: not run on schedule", job.model, job.kind)
                continue
            last = self.store.last_retrain(job.model)
            if last is not None and moment - last.started_at < timedelta(
                seconds=job.schedule_every_s
            ):
                continue
            ran.append(self.trigger(by, job.model, trigger="schedule", now=moment))
        return ran

    def due_periods(self, now: datetime) -> list[tuple[str, datetime]]:
        """Each scheduled (and runnable) job's model with the start of its current period:
        the schedule queues one retraining job per (model, period), keyed by both, so it runs
        once per period however many workers look."""
        due: list[tuple[str, datetime]] = []
        for job in self.store.scheduled_jobs():
            assert job.schedule_every_s is not None
            if job.kind not in RUNNABLE:
                log.warning("retraining job of %s is %s: not run on schedule", job.model, job.kind)
                continue
            every = job.schedule_every_s
            start = datetime.fromtimestamp(now.timestamp() // every * every, UTC)
            due.append((job.model, start))
        return due
