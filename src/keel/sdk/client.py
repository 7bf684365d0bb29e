"""`Client`: the registry's REST API as typed Python calls over one HTTP connection pool."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast, overload
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from keel.domain.lifecycle import VersionStatus
from keel.domain.permissions import PrincipalKind, Role
from keel.errors import InvalidInput, KeelError, TransportError, error_from_envelope
from keel.schemas import (
    AliasIn,
    AliasOut,
    AuditCheckpoint,
    AuditEventOut,
    AuditHead,
    AuditVerification,
    EnvironmentSpec,
    GrantIn,
    ModelCardSpec,
    ModelIn,
    ModelOut,
    ModelPatch,
    PrincipalIn,
    PrincipalOut,
    SignatureSpec,
    StatusChange,
    TeamIn,
    TeamOut,
    TokenCreated,
    TokenIn,
    TokenOut,
    VersionIn,
)
from keel.sdk import artifacts
from keel.sdk.artifacts import Progress
from keel.sdk.costs import CostCalls
from keel.sdk.credentials import discover_token
from keel.sdk.delivery import DeliveryCalls
from keel.sdk.deployments import DeploymentCalls
from keel.sdk.documents import DocumentsMixin
from keel.sdk.drills import DrillCalls
from keel.sdk.estimation import EstimationCalls
from keel.sdk.evaluation import EvaluationMixin
from keel.sdk.governance import GovernanceMixin
from keel.sdk.incidents import IncidentCalls
from keel.sdk.jobs import JobCalls
from keel.sdk.lineage import strip_credentials
from keel.sdk.maturity import MaturityCalls
from keel.sdk.metadata import version_metadata
from keel.sdk.monitoring import MonitoringCalls
from keel.sdk.notifications import NotificationCalls
from keel.sdk.playbooks import PlaybookCalls
from keel.sdk.profiles import ProfileCalls
from keel.sdk.report import ReportCalls
from keel.sdk.risk import RiskMixin
from keel.sdk.telemetry import TelemetryCalls
from keel.sdk.types import ModelVersion, NewToken
from keel.sdk.validation import validated
from keel.sdk.value import ValueCalls

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_URL = "http://127.0.0.1:8420"
SHA256_HEADER = "X-Keel-Artifact-Sha256"
_API = "/api/v1"

M = TypeVar("M", bound=BaseModel)


class Client(
    RiskMixin,
    DocumentsMixin,
    EvaluationMixin,
    GovernanceMixin,
    MonitoringCalls,
    TelemetryCalls,
    NotificationCalls,
    IncidentCalls,
    ValueCalls,
    DeliveryCalls,
    MaturityCalls,
    ReportCalls,
    PlaybookCalls,
    CostCalls,
    ProfileCalls,
    JobCalls,
    DeploymentCalls,
    DrillCalls,
    EstimationCalls,
):
    """A connection to one Keel server.

    ``url`` defaults to ``$KEEL_URL`` then ``http://127.0.0.1:8420``. ``token`` is sent as a
    bearer token; it defaults to ``$KEEL_TOKEN`` and then, for a server on this machine only, to
    the first admin's token in ``<data dir>/admin-token`` (``$KEEL_HOME`` or ``./.keel``), as
    the first ``keel up`` wrote it; ``token=""`` sends none. ``transport`` replaces the network
    (tests pass the app's). Every error the server answers is raised as the matching
    `keel.errors.KeelError`. The token never appears in the client's repr or in its errors.

    >>> with Client("http://keel.internal:8420", token="s3cret") as keel:
    ...     keel
    Client(url='http://keel.internal:8420')
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.url = (url or os.environ.get("KEEL_URL") or DEFAULT_URL).rstrip("/")
        token = discover_token(self.url, token)
        headers = {"User-Agent": "keel-sdk"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, transport=transport, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"Client(url={strip_credentials(self.url)!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Send the predictions still buffered, then close the connection pool; the client
        cannot be used afterwards."""
        self._close_telemetry()
        self._http.close()

    # -- teams ------------------------------------------------------------------------------

    def create_team(self, name: str, description: str = "") -> TeamOut:
        body = validated(TeamIn, {"name": name, "description": description}, "team")
        return self._call(TeamOut, "POST", f"{_API}/teams", json=body.model_dump(mode="json"))

    def list_teams(self, *, limit: int = 100) -> Iterator[TeamOut]:
        """Every team; ``limit`` is the page size, further pages are fetched as you iterate."""
        return self._paged(TeamOut, f"{_API}/teams", {"limit": limit})

    # -- models -----------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        team: str,
        owner: str,
        description: str = "",
        use_case: str = "",
        tags: Iterable[str] = (),
    ) -> ModelOut:
        body = validated(
            ModelIn,
            {
                "name": name,
                "team": team,
                "owner": owner,
                "description": description,
                "use_case": use_case,
                "tags": [tags] if isinstance(tags, str) else list(tags),
            },
            "model",
        )
        return self._call(ModelOut, "POST", f"{_API}/models", json=body.model_dump(mode="json"))

    def get_model(self, name: str) -> ModelOut:
        return self._call(ModelOut, "GET", _model_path(name))

    def update_model(self, name: str, **changes: Any) -> ModelOut:
        """Change some of a model's fields (team, owner, description, use_case, tags)."""
        patch = validated(ModelPatch, changes, "model changes")
        body = patch.model_dump(mode="json", exclude_unset=True)
        return self._call(ModelOut, "PATCH", _model_path(name), json=body)

    def list_models(
        self,
        *,
        team: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        q: str | None = None,
        limit: int = 100,
    ) -> Iterator[ModelOut]:
        """Models matching every filter given; ``limit`` is the page size, not a maximum."""
        query = {"team": team, "tag": tag, "status": status, "q": q, "limit": limit}
        return self._paged(ModelOut, f"{_API}/models", query)

    # -- versions ---------------------------------------------------------------------------

    def register_version(
        self,
        model: str,
        artifact: object,
        *,
        training_data: pd.DataFrame | None = None,
        target: str | None = None,
        protected_attributes: Iterable[str] = (),
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        card: ModelCardSpec | Mapping[str, Any] | None = None,
        description: str = "",
        signature: SignatureSpec | Mapping[str, Any] | None = None,
        parent_version: int | None = None,
        capture_git: bool = True,
        environment: EnvironmentSpec | None = None,
        progress: Progress | None = None,
        format: artifacts.ArtifactFormat | None = None,
    ) -> ModelVersion:
        """Upload a new version of ``model`` with what is known about how it was made.

        ``artifact`` is a fitted estimator or the path of a model file. An estimator is saved
        with ``format``: ``"skops"`` (loads on the server without running code), ``"joblib"``
        (any picklable object; a pickle, loaded only inside Keel's sandbox), or by default skops
        when the estimator round-trips through it with the types Keel trusts, else joblib with
        a warning. From ``training_data`` (a DataFrame) come the signature (unless
        ``signature`` is given) and the dataset fingerprint; ``target`` and
        ``protected_attributes`` name its columns. The git checkout of the working directory
        (unless ``capture_git=False``) and this Python environment (unless ``environment`` is
        given) are recorded as lineage. The training data is also uploaded as the version's
        reference profile for drift monitoring (`set_reference`).
        """
        metadata = version_metadata(
            training_data=training_data,
            target=target,
            protected_attributes=protected_attributes,
            metrics=metrics,
            params=params,
            card=card,
            description=description,
            signature=signature,
            parent_version=parent_version,
            capture_git=capture_git,
            environment=environment,
        )
        with artifacts.artifact_file(artifact, format) as path:
            registered = self.upload_version(model, path, metadata, progress=progress)
        if training_data is not None:
            try:
                self.set_reference(model, registered.version, training_data, source="training data")
            except KeelError as exc:  # the version exists; say how to finish the job
                warnings.warn(
                    f"Version {registered.version} of {model!r} is registered, but its reference "
                    f"profile was not stored ({exc.message}). Retry with "
                    f"client.set_reference({model!r}, {registered.version}, training_data).",
                    stacklevel=2,
                )
        return registered

    def upload_version(
        self,
        model: str,
        path: str | os.PathLike[str],
        metadata: VersionIn,
        *,
        progress: Progress | None = None,
    ) -> ModelVersion:
        """Upload the model file at ``path`` with ``metadata`` exactly as given.

        The file is streamed from disk and keeps its name. `register_version` is the friendlier
        call; this one is for metadata prepared elsewhere (the CLI's ``--metadata`` file).
        """
        path = Path(path)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise InvalidInput(
                f"Cannot read the artifact file {str(path)!r}: {exc.strerror}.",
                {"field": "artifact"},
            ) from None
        with handle:
            # Declared so the server refuses the upload if the bytes change on the way.
            declared = artifacts.file_sha256(handle)
            body: IO[bytes] = handle
            if progress is not None:
                body = cast(IO[bytes], artifacts.ReportingReader(handle, progress))
            return self._call(
                ModelVersion,
                "POST",
                f"{_model_path(model)}/versions",
                files={"artifact": (path.name, body, "application/octet-stream")},
                data={"metadata": metadata.model_dump_json(), "sha256": declared},
            )

    def get_version(self, model: str, version: int) -> ModelVersion:
        return self._call(ModelVersion, "GET", _version_path(model, version))

    def list_versions(
        self, model: str, status: VersionStatus | str | None = None, *, limit: int = 100
    ) -> Iterator[ModelVersion]:
        """The model's versions (optionally only those in ``status``); fetched page by page."""
        query = {"status": None if status is None else str(status), "limit": limit}
        return self._paged(ModelVersion, f"{_model_path(model)}/versions", query)

    def set_status(
        self, model: str, version: int, status: VersionStatus | str, reason: str = ""
    ) -> ModelVersion:
        body = validated(StatusChange, {"status": status, "reason": reason}, "status change")
        return self._call(
            ModelVersion,
            "POST",
            f"{_version_path(model, version)}/status",
            json=body.model_dump(mode="json"),
        )

    @overload
    def download_artifact(self, model: str, version: int, path: None = None) -> bytes: ...

    @overload
    def download_artifact(self, model: str, version: int, path: str | os.PathLike[str]) -> Path: ...

    def download_artifact(
        self, model: str, version: int, path: str | os.PathLike[str] | None = None
    ) -> bytes | Path:
        """The version's artifact bytes, or the `Path` they were written to when ``path`` is given.

        The bytes are checked against the SHA-256 the registry recorded at upload (and the one the
        server sends along); a mismatch raises `keel.errors.ArtifactCorrupted`. When ``path`` is
        an existing folder (or ends in ``/``) the file keeps its registered name inside it.
        Nothing is ever left half-written at ``path``: the download goes to a temporary file that
        is renamed once it checks out.
        """
        recorded = self.get_version(model, version).artifact
        target = None if path is None else artifacts.download_target(path, recorded.filename)
        with self._stream("GET", f"{_version_path(model, version)}/artifact") as response:
            served = response.headers.get(SHA256_HEADER)
            expected = artifacts.ExpectedHash(model, version, recorded.sha256, served)
            if target is None:
                return artifacts.read_verified(response, expected)
            return artifacts.write_verified(response, target, expected)

    # -- aliases ----------------------------------------------------------------------------

    def set_alias(self, model: str, alias: str, version: int) -> AliasOut:
        """Point ``alias`` at ``version`` (``production`` is reserved for governed promotion)."""
        body = validated(AliasIn, {"version": version}, "alias")
        return self._call(
            AliasOut, "PUT", _alias_path(model, alias), json=body.model_dump(mode="json")
        )

    def delete_alias(self, model: str, alias: str) -> None:
        self._send("DELETE", _alias_path(model, alias))

    def aliases(self, model: str) -> list[AliasOut]:
        """The model's aliases as they point now."""
        data = self._json("GET", f"{_model_path(model)}/aliases")
        return [self._parse(AliasOut, item) for item in _as_list(data, self.url)]

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasOut]:
        """Every period an alias (or each alias) pointed at a version, newest first."""
        params = {} if alias is None else {"alias": alias}
        data = self._json("GET", f"{_model_path(model)}/aliases/history", params=params)
        return [self._parse(AliasOut, item) for item in _as_list(data, self.url)]

    # -- identity ---------------------------------------------------------------------------

    def whoami(self) -> PrincipalOut:
        """The user or service account this client's token belongs to, with its roles."""
        return self._call(PrincipalOut, "GET", f"{_API}/users/me")

    def create_user(self, name: str, kind: PrincipalKind | str = "user") -> PrincipalOut:
        """Create a user, or a service account with ``kind="service"`` (admins only)."""
        body = validated(PrincipalIn, {"name": name, "kind": kind}, "user")
        return self._call(PrincipalOut, "POST", f"{_API}/users", json=body.model_dump(mode="json"))

    def list_users(self) -> list[PrincipalOut]:
        """Every user and service account with its roles (admins only)."""
        data = self._json("GET", f"{_API}/users")
        return [self._parse(PrincipalOut, item) for item in _as_list(data, self.url)]

    def grant(self, name: str, role: Role | str, team: str | None = None) -> PrincipalOut:
        """Give ``name`` the ``role`` in ``team`` (admins only); admin is global: no team."""
        body = validated(GrantIn, {"role": role, "team": team}, "grant")
        return self._call(
            PrincipalOut,
            "POST",
            f"{_API}/users/{quote(name, safe='')}/roles",
            json=body.model_dump(mode="json"),
        )

    # -- tokens -----------------------------------------------------------------------------

    def create_token(
        self,
        name: str = "default",
        principal: str | None = None,
        expires_in_days: int | None = None,
    ) -> TokenCreated:
        """A new API token, yours or (admins only) ``principal``'s.

        ``.token`` is the secret: the server shows it this once and keeps only its hash.
        """
        body = validated(
            TokenIn,
            {"name": name, "principal": principal, "expires_in_days": expires_in_days},
            "token",
        )
        payload = body.model_dump(mode="json", exclude_none=True)
        return self._call(NewToken, "POST", f"{_API}/tokens", json=payload)

    def list_tokens(self, principal: str | None = None) -> list[TokenOut]:
        """Your tokens; an admin sees everyone's, or ``principal``'s. Never the secrets."""
        params = {} if principal is None else {"principal": principal}
        data = self._json("GET", f"{_API}/tokens", params=params)
        return [self._parse(TokenOut, item) for item in _as_list(data, self.url)]

    def revoke_token(self, id: int) -> TokenOut:
        """Revoke a token by its id (its owner or an admin); it stops working at once."""
        return self._call(TokenOut, "DELETE", f"{_API}/tokens/{int(id)}")

    # -- audit ------------------------------------------------------------------------------

    def audit_log(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        subject_type: str | None = None,
        subject_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> Iterator[AuditEventOut]:
        """Audit events matching every filter, oldest first (admins only).

        ``since`` is a moment (a naive datetime is taken as UTC, as Keel shows times);
        ``limit`` is the page size: further pages are fetched as you iterate.
        """
        query = {
            "actor": actor,
            "action": action,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "since": None if since is None else _utc(since).isoformat(),
            "limit": limit,
        }
        return self._paged(AuditEventOut, f"{_API}/audit", query)

    def audit_head(self) -> AuditHead:
        """The newest event's seq and hash; write ``.anchor`` down to verify against later."""
        return self._call(AuditHead, "GET", f"{_API}/audit/head")

    def audit_verify(self, anchor: str | None = None) -> AuditVerification:
        """Walk the audit hash chain on the server; ``.intact`` is False when it was altered.

        ``anchor`` is a ``SEQ:HASH`` from an earlier `audit_head`: it also catches a chain
        rewritten from that point on, head included.
        """
        params = {} if anchor is None else {"anchor": anchor}
        return self._call(AuditVerification, "GET", f"{_API}/audit/verify", params=params)

    def audit_checkpoint(self) -> AuditCheckpoint:
        """Sign the current head with the server's audit key and export it (admins only).

        `audit_verify` then catches events deleted up to it (truncation) or rewritten before it.
        """
        return self._call(AuditCheckpoint, "POST", f"{_API}/audit/checkpoints")

    # -- server -----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The server's liveness answer, ``{"status": "ok"}`` when it is up."""
        data = self._json("GET", "/healthz")
        if not isinstance(data, dict):
            raise TransportError(f"The server at {self!r} answered /healthz with {data!r}.")
        return data

    # -- plumbing ---------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        _raise_for_error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise TransportError(
                f"The server at {strip_credentials(self.url)} answered {method} {path} with "
                f"something that is not JSON ({response.headers.get('content-type', 'no type')}). "
                "Is KEEL_URL (or --url) the address of a Keel server?"
            ) from None

    @contextlib.contextmanager
    def _stream(self, method: str, path: str) -> Iterator[httpx.Response]:
        try:
            with self._http.stream(method, path) as response:
                if not response.is_success:
                    response.read()
                    _raise_for_error(response)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: httpx.TransportError) -> TransportError:
        url = strip_credentials(self.url)
        return TransportError(
            f"Could not reach the Keel server at {url} ({type(exc).__name__}). "
            "Start one with `keel up`, or set KEEL_URL (or --url) to the server's address.",
            {"url": url},
        )

    def _parse(self, model: type[M], data: Any) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise TransportError(
                f"The server at {strip_credentials(self.url)} answered with a {model.__name__} "
                f"this SDK does not understand ({exc.error_count()} problems); "
                "are the server and the SDK the same Keel version?"
            ) from exc

    def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return self._parse(model, self._json(method, path, **kwargs))

    def _paged(self, model: type[M], path: str, query: Mapping[str, Any]) -> Iterator[M]:
        params = {key: value for key, value in query.items() if value is not None}
        seen: set[str] = set()
        while True:
            page = self._json("GET", path, params=params)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise TransportError(f"The server at {self.url} answered a listing with {page!r}.")
            for item in page["items"]:
                yield self._parse(model, item)
            cursor = page.get("next_cursor")
            if not cursor or cursor in seen:
                return
            seen.add(cursor)
            params["cursor"] = cursor


def _raise_for_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    raise error_from_envelope(response.status_code, body)


def _as_list(data: Any, url: str) -> list[Any]:
    if not isinstance(data, list):
        raise TransportError(f"The server at {url} answered a listing with {data!r}.")
    return data


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _model_path(name: str) -> str:
    return f"{_API}/models/{quote(name, safe='')}"


def _version_path(model: str, version: int) -> str:
    return f"{_model_path(model)}/versions/{int(version)}"


def _alias_path(model: str, alias: str) -> str:
    return f"{_model_path(model)}/aliases/{quote(alias, safe='')}"
