"""Playbooks, rollback and retraining from Python.

These are methods of `keel.sdk.Client` (mixed in), e.g.::

    keel.apply_playbook(Path("credit-drift.yaml").read_text())
    plan = keel.test_playbook(Path("credit-drift.yaml").read_text(), incident_id=12)
    keel.rollback("credit", reason="drift on income, incident 12", incident_id=12)
    keel.set_retraining_job("credit", webhook=True)  # a command job needs an admin
    run = keel.retrain("credit")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.errors import TransportError
from keel.schemas.governance import PromotionOut
from keel.schemas.jobs import JobOut
from keel.schemas.playbooks import (
    DryRunOut,
    PlaybookIn,
    PlaybookOut,
    PlaybookTestIn,
    RetrainIn,
    RetrainingJobIn,
    RetrainingJobOut,
    RetrainRunOut,
    RollbackIn,
)
from keel.sdk.jobs import raise_if_unsuccessful, wait_for

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class _Http(Protocol):
    url: str

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


def _model(name: str) -> str:
    return f"{_API}/models/{quote(name, safe='')}"


def _list(http: _Http, model: type[M], data: Any) -> list[M]:
    if not isinstance(data, list):
        raise TransportError(f"The server at {http.url} answered a listing with {data!r}.")
    return [http._parse(model, item) for item in data]


class PlaybookCalls:
    """The playbooks, rollback and retraining part of `keel.sdk.Client`."""

    def apply_playbook(self: _Http, source: str, filename: str = "playbook.yaml") -> PlaybookOut:
        """Apply playbook YAML (a new version of its name)."""
        body = PlaybookIn(source=source, filename=filename).model_dump(mode="json")
        return self._parse(PlaybookOut, self._json("POST", f"{_API}/playbooks", json=body))

    def list_playbooks(self: _Http) -> list[PlaybookOut]:
        """The playbooks in force."""
        return _list(self, PlaybookOut, self._json("GET", f"{_API}/playbooks"))

    def test_playbook(
        self: _Http, source: str, incident_id: int, filename: str = "playbook.yaml"
    ) -> DryRunOut:
        """Dry run: what the playbook would do for the incident, changing nothing."""
        body = PlaybookTestIn(source=source, incident_id=incident_id, filename=filename)
        answer = self._json("POST", f"{_API}/playbooks/test", json=body.model_dump(mode="json"))
        return self._parse(DryRunOut, answer)

    def rollback(
        self: _Http, model: str, *, reason: str, incident_id: int | None = None
    ) -> PromotionOut:
        """Move production back to the previous promoted version (409 with the reasons if not)."""
        body = RollbackIn(reason=reason, incident_id=incident_id).model_dump(mode="json")
        return self._parse(PromotionOut, self._json("POST", f"{_model(model)}/rollback", json=body))

    def set_retraining_job(
        self: _Http,
        model: str,
        *,
        command: Sequence[str] | None = None,
        webhook: bool = False,
        code_paths: Sequence[str] = (),
        memory_mb: int = 4096,
        timeout_s: int = 3600,
        window_days: int = 7,
        schedule_every_s: int | None = None,
    ) -> RetrainingJobOut:
        """Define the model's retraining job: a command template run in the sandbox (admins
        only; ``code_paths`` are the server paths it may read) or a webhook (team writers)."""
        body = RetrainingJobIn(
            command=None if command is None else list(command),
            webhook=webhook,
            code_paths=list(code_paths),
            memory_mb=memory_mb,
            timeout_s=timeout_s,
            window_days=window_days,
            schedule_every_s=schedule_every_s,
        ).model_dump(mode="json")
        answer = self._json("PUT", f"{_model(model)}/retraining-job", json=body)
        return self._parse(RetrainingJobOut, answer)

    def retraining_job(self: _Http, model: str) -> RetrainingJobOut:
        """The model's retraining job."""
        return self._parse(RetrainingJobOut, self._json("GET", f"{_model(model)}/retraining-job"))

    def start_retrain(self: _Http, model: str, *, incident_id: int | None = None) -> JobOut:
        """Queue a run of the model's retraining job; returns the job at once."""
        body = RetrainIn(incident_id=incident_id).model_dump(mode="json")
        return self._parse(JobOut, self._json("POST", f"{_model(model)}/retrain", json=body))

    def retrain(
        self: _Http,
        model: str,
        *,
        incident_id: int | None = None,
        timeout: float | None = None,
        on_progress: Callable[[JobOut], None] | None = None,
    ) -> RetrainRunOut:
        """Run the model's retraining job now and wait for it (a queued job, followed until it
        finishes, however long it takes: no HTTP timeout applies); returns the finished run."""
        job = PlaybookCalls.start_retrain(self, model, incident_id=incident_id)
        done = raise_if_unsuccessful(
            wait_for(self, job.id, timeout=timeout, on_progress=on_progress)
        )
        run_id = int((done.result or {})["retrain_run"])
        runs = _list(self, RetrainRunOut, self._json("GET", f"{_model(model)}/retrain-runs"))
        return next(r for r in runs if r.id == run_id)

    def retrain_runs(self: _Http, model: str) -> list[RetrainRunOut]:
        """Every retrain run of the model, oldest first (for the model's team and admins)."""
        return _list(self, RetrainRunOut, self._json("GET", f"{_model(model)}/retrain-runs"))
