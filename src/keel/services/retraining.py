"""Continuous training: a retraining job per model, its triggers, and what its runs produce.

A model's job is either

- a **command** template: a list of arguments run as a subprocess (no shell) with a timeout.
  Placeholders: ``{model}``, ``{data}`` (a Parquet file: the window's labelled predictions of the
  production version, exported with DuckDB), ``{data_dir}`` (the run's directory, which holds
  ``{data}``), ``{output_dir}``, ``{window_start}``, ``{window_end}`` (ISO 8601), ``{incident}``
  (the incident id, or empty) and ``{run}`` (the retrain run id). The same values are in the
  environment as ``KEEL_RETRAIN_*``. The job writes the trained artifact (one file) to
  ``{output_dir}``, optionally with ``metadata.json`` (``metrics``, ``params``, ``description``,
  ``environment``), and Keel registers it as the next version itself: no token is handed to the
  job, and the version gets its lineage from the run (parent = the production version; params
  ``retrain_run``, ``retrain_incident``, ``retrain_window_start``, ``retrain_window_end``). A job
  that registers through the SDK instead (with its own ``KEEL_TOKEN``) leaves ``{output_dir}``
  empty; Keel then records the newest version registered during the run.
- a **webhook**: Keel emits ``retrain.requested`` through the notifications outbox (signed,
  retried); the receiver retrains and registers through the API.

Triggers: a playbook (``retrain`` action, with the incident), a schedule (the worker's
`run_due`), or a person (`keel retrain MODEL`). Every run is recorded (``retrain_runs``) and
audited; a version the job registers gets the production version's evaluation data and its
gates run at once (`Governance.run_gates`).

Runs are synchronous: `trigger` returns when the job finished or timed out.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.registry import Environment, Lineage, ModelVersion, VersionDraft
from keel.domain.signature import ColumnRole
from keel.errors import InvalidInput, KeelError, NotFound
from keel.services.governance import Governance
from keel.services.registry import Registry
from keel.services.telemetry import Telemetry
from keel.store.sql.playbooks import RetrainingJob, RetrainRun, SqlPlaybookStore

PLACEHOLDERS = frozenset(
    {"model", "data", "data_dir", "output_dir", "window_start", "window_end", "incident", "run"}
)
TRIGGERS = frozenset({"playbook", "schedule", "manual"})
MAX_TIMEOUT_S = 24 * 3600
MAX_WINDOW_DAYS = 366
TAIL_CHARS = 4000
METADATA_FILE = "metadata.json"


class Emitter(Protocol):
    """What retraining needs of the notifications service."""

    def emit(self, event_type: str, payload: Mapping[str, Any]) -> list[int]: ...


def _check_command(command: Sequence[str]) -> tuple[str, ...]:
    if not command or not all(isinstance(a, str) and a for a in command):
        raise InvalidInput(
            "The 'command' must be a non-empty list of non-empty arguments, e.g. "
            '["python", "train.py", "--data", "{data}", "--out", "{output_dir}"].',
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
    ) -> None:
        self.store = store
        self.registry = registry
        self.governance = governance
        self.telemetry = telemetry
        self.runs_dir = runs_dir
        self.notifications = notifications

    # -- the job definition ---------------------------------------------------------------------

    def set_job(
        self,
        by: Principal,
        model: str,
        *,
        command: Sequence[str] | None = None,
        webhook: bool = False,
        timeout_s: int = 3600,
        window_days: int = 7,
        schedule_every_s: int | None = None,
    ) -> RetrainingJob:
        """Define (or replace) the model's retraining job: a ``command`` or a ``webhook``."""
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        if (command is not None) == webhook:
            raise InvalidInput(
                "Give exactly one of 'command' (a subprocess) or 'webhook' (emit "
                "retrain.requested).",
                {"field": "command"},
            )
        if not 1 <= timeout_s <= MAX_TIMEOUT_S:
            raise InvalidInput(
                f"The 'timeout_s' must be 1-{MAX_TIMEOUT_S} seconds.", {"field": "timeout_s"}
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
            )
        )

    def job(self, model: str) -> RetrainingJob:
        """The model's retraining job, or `NotFound` saying how to define one."""
        name = check_name(model, "model")
        found = self.store.job(name)
        if found is None:
            raise NotFound(
                f"{name} has no retraining job. Define one with "
                f"`PUT /api/v1/models/{name}/retraining-job`.",
                {"model": name},
            )
        return found

    def runs(self, model: str) -> list[RetrainRun]:
        """Every retrain run of the model, oldest first."""
        return self.store.retrain_runs(check_name(model, "model"))

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

    def trigger(
        self,
        by: Principal,
        model: str,
        *,
        trigger: str = "manual",
        incident_id: int | None = None,
        now: datetime | None = None,
    ) -> RetrainRun:
        """Run the model's retraining job on the latest window; return the recorded run."""
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        if trigger not in TRIGGERS:
            raise InvalidInput(
                f"The 'trigger' must be one of {', '.join(sorted(TRIGGERS))}.",
                {"field": "trigger"},
            )
        job = self.job(owner.name)
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
        data = run_dir / "window.parquet"
        try:
            # The window of the version in production (else the newest version).
            self._export_window(
                owner.name, production or self._newest_version(owner.name), start, end, data
            )
        except KeelError as exc:
            return self._finish(by, run, "failed", None, f"exporting the window failed: {exc}")
        values = {
            "model": owner.name,
            "data": str(data),
            "data_dir": str(run_dir),
            "output_dir": str(output),
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "incident": "" if incident_id is None else str(incident_id),
            "run": str(run.id),
        }
        if job.kind == "webhook":
            if self.notifications is None:
                return self._finish(by, run, "failed", None, "notifications are not configured")
            self.notifications.emit(
                "retrain.requested", {**values, "trigger": trigger, "run_id": run.id}
            )
            return self._finish(by, run, "sent", None, "retrain.requested emitted")
        before = self._newest_version(owner.name)
        argv = [argument.format(**values) for argument in job.command]
        env = {**os.environ, **{f"KEEL_RETRAIN_{k.upper()}": v for k, v in values.items()}}
        try:
            done = subprocess.run(  # argv from the job definition, never a shell
                argv,
                cwd=run_dir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=job.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode()
            return self._finish(
                by, run, "timed_out", None, _tail(out + f"\n[killed after {job.timeout_s}s]")
            )
        except OSError as exc:
            return self._finish(by, run, "failed", None, f"could not start {argv[0]!r}: {exc}")
        if done.returncode != 0:
            return self._finish(by, run, "failed", done.returncode, _tail(done.stdout))
        try:
            version = self._register(by, owner.name, production, run, output, before)
        except KeelError as exc:
            return self._finish(
                by,
                run,
                "failed",
                done.returncode,
                _tail(done.stdout + f"\nregistering the output failed: {exc.message}"),
            )
        finished = self._finish(by, run, "succeeded", done.returncode, _tail(done.stdout), version)
        if version is not None:
            self._prepare_and_gate(by, owner.name, production, version)
        return finished

    def _finish(
        self,
        by: Principal,
        run: RetrainRun,
        status: str,
        exit_code: int | None,
        tail: str,
        version: int | None = None,
    ) -> RetrainRun:
        return self.store.finish_retrain(
            run.id,
            status=status,
            exit_code=exit_code,
            output_tail=tail,
            registered_version=version,
            actor=by.name,
        )

    def _register(
        self,
        by: Principal,
        model: str,
        production: int | None,
        run: RetrainRun,
        output: Path,
        before: int,
    ) -> int | None:
        artifacts = sorted(p for p in output.iterdir() if p.is_file() and p.name != METADATA_FILE)
        if not artifacts:
            newest = self._newest_version(model)
            return newest if newest > before else None
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
        """The schedule trigger: run every scheduled job whose interval has passed."""
        moment = now or datetime.now(UTC)
        ran: list[RetrainRun] = []
        for job in self.store.scheduled_jobs():
            assert job.schedule_every_s is not None
            last = self.store.last_retrain(job.model)
            if last is not None and moment - last.started_at < timedelta(
                seconds=job.schedule_every_s
            ):
                continue
            ran.append(self.trigger(by, job.model, trigger="schedule", now=moment))
        return ran
