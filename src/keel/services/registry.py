"""The model registry: teams, models, versions, lifecycle and aliases."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from typing import BinaryIO

from keel.domain.flavor import ACCEPTED_FORMATS, data_format, detect_flavor
from keel.domain.lifecycle import GOVERNED_STATUSES, VersionStatus
from keel.domain.names import check_alias, check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.registry import (
    AliasAssignment,
    Artifact,
    Model,
    ModelChanges,
    ModelQuery,
    ModelVersion,
    Page,
    Team,
    VersionDraft,
)
from keel.errors import Conflict, InvalidInput, MalformedUpload, PermissionDenied
from keel.services.scanning import ArtifactScanner
from keel.store.artifacts import ArtifactStore
from keel.store.registry_store import RegistryStore

# Aliases that move traffic; only governance's promotion path may set them, and only it may
# change the status of the version holding one (a promotion or rollback retires it).
GOVERNED_ALIASES = frozenset({"production"})
# A version in one of these is still a candidacy its team's approvers decide on.
CANDIDACY_STATUSES = frozenset(
    {VersionStatus.REGISTERED, VersionStatus.CANDIDATE, VersionStatus.APPROVED}
)
MAX_PAGE = 500
_FLAVOR_SCAN_BYTES = 8 * 1024 * 1024


class _Rejoined(io.RawIOBase):
    """The bytes already read for inspection, followed by the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        chunk = self._rest.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(
            f"The 'limit' parameter must be between 1 and {MAX_PAGE}. Got {limit} instead.",
            {"field": "limit"},
        )
    return limit


def _sha256_of(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


class Registry:
    """The registry's rules over a metadata store and an artifact store."""

    def __init__(
        self,
        store: RegistryStore,
        artifacts: ArtifactStore,
        *,
        max_artifact_bytes: int,
        scanner: ArtifactScanner | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.max_artifact_bytes = max_artifact_bytes
        # Scans every stored artifact before its version is recorded (see services/scanning).
        self.scanner = scanner

    # -- teams and models ----------------------------------------------------------------------

    def create_team(self, by: Principal, name: str, description: str = "") -> Team:
        authorize(by, Permission.ADMIN)
        return self.store.create_team(check_name(name, "name"), description, by.name)

    def list_teams(self, *, cursor: str | None = None, limit: int = 100) -> Page[Team]:
        return self.store.list_teams(cursor=cursor, limit=_page_size(limit))

    def _writable(self, by: Principal, model: str) -> Model:
        """The model, once ``by`` is known to hold write access in its team."""
        found = self.store.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, found.team)
        return found

    def create_model(self, by: Principal, model: Model) -> Model:
        check_name(model.name, "name")
        check_name(model.team, "team")
        authorize(by, Permission.WRITE, model.team)
        if not model.owner.strip():
            raise InvalidInput("The 'owner' field must name a person or group.", {"field": "owner"})
        return self.store.create_model(model, by.name)

    def get_model(self, name: str) -> Model:
        return self.store.get_model(check_name(name, "model"))

    def update_model(self, by: Principal, name: str, changes: ModelChanges) -> Model:
        """Edit a model. Moving it to another team needs write access in both teams, and an
        admin while any version awaits sign-off or promotion (registered, candidate, approved):
        otherwise the move would hand those candidacies to the new team's approvers, chosen by
        whoever moved it."""
        self._writable(by, name)
        if changes.team is not None:
            check_name(changes.team, "team")
            authorize(by, Permission.WRITE, changes.team)  # moving a model needs both teams
        if changes.owner is not None and not changes.owner.strip():
            raise InvalidInput("The 'owner' field must name a person or group.", {"field": "owner"})

        def check_move(team: str, statuses: Mapping[int, VersionStatus]) -> None:
            pending = {v: s for v, s in sorted(statuses.items()) if s in CANDIDACY_STATUSES}
            if not pending or by.is_admin:
                return
            listed = ", ".join(f"v{v} {s}" for v, s in pending.items())
            raise PermissionDenied(
                f"{by.name!r} may not move {name} from team {team!r} to {changes.team!r} while "
                f"versions await sign-off or promotion ({listed}): their approvers are team "
                f"{team!r}'s. Ask an admin to move it, or finish those candidacies first "
                "(promote, or reject them).",
                {
                    "permission": "admin",
                    "needs": "admin",
                    "field": "team",
                    "pending_versions": list(pending),
                },
            )

        return self.store.update_model(name, changes, by.name, check_move=check_move)

    def list_models(
        self, query: ModelQuery, *, cursor: str | None = None, limit: int = 100
    ) -> Page[Model]:
        return self.store.list_models(query, cursor=cursor, limit=_page_size(limit))

    # -- versions ------------------------------------------------------------------------------

    def register_version(
        self,
        by: Principal,
        model: str,
        upload: BinaryIO,
        filename: str,
        draft: VersionDraft,
        *,
        declared_sha256: str | None = None,
        number: int | None = None,
    ) -> ModelVersion:
        """Store the artifact by its hash and record the version numbered after the newest
        (or ``number``, when an import keeps another registry's numbering).

        ``upload`` must be seekable when ``declared_sha256`` is given: the bytes are checked
        against the client's hash before anything is stored, so a corrupted transfer writes
        nothing.
        """
        self._writable(by, model)  # unknown model or no access: store no bytes
        if declared_sha256 is not None:
            received = _sha256_of(upload)
            if received != declared_sha256:
                raise MalformedUpload(
                    "The artifact arrived corrupted: its bytes hash to "
                    f"{received}, but the client declared {declared_sha256}. Upload it again.",
                    {"field": "artifact", "expected": declared_sha256, "received": received},
                )
        head = upload.read(_FLAVOR_SCAN_BYTES)
        recognised = data_format(head, filename)
        if recognised is not None:  # refused before anything is stored
            raise InvalidInput(
                f"The artifact is a {recognised} file, not a model. Upload the model itself: "
                + "; ".join(ACCEPTED_FORMATS)
                + ". Evaluation data is attached with 'keel eval-data attach'.",
                {"field": "artifact", "detected": recognised, "accepted": list(ACCEPTED_FORMATS)},
            )
        stored = self.artifacts.put(
            io.BufferedReader(_Rejoined(head, upload)), max_bytes=self.max_artifact_bytes
        )
        artifact = Artifact(
            sha256=stored.sha256,
            size=stored.size,
            flavor=detect_flavor(head, filename),
            filename=filename or "artifact",
        )
        if self.scanner is not None:
            # Stored by SHA-256 before the version exists; unsafe artifacts are still registered
            # (governance fails them with this evidence) but never loaded.
            self.scanner.scan(artifact, by.name)
        if number is not None and number < 1:
            raise InvalidInput(
                f"A version number must be 1 or more. Got {number} instead.", {"field": "version"}
            )
        return self.store.create_version(model, artifact, draft, by.name, number=number)

    def get_version(self, model: str, version: int) -> ModelVersion:
        return self.store.get_version(check_name(model, "model"), version)

    def list_versions(
        self,
        model: str,
        *,
        status: VersionStatus | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[ModelVersion]:
        return self.store.list_versions(
            check_name(model, "model"), status=status, cursor=cursor, limit=_page_size(limit)
        )

    def open_artifact(self, model: str, version: int) -> tuple[ModelVersion, BinaryIO]:
        """The version and a verified copy of its artifact (`ArtifactCorrupted` on mismatch)."""
        found = self.get_version(model, version)
        return found, self.artifacts.open_verified(found.artifact.sha256)

    def set_status(
        self, by: Principal, model: str, version: int, status: VersionStatus, reason: str = ""
    ) -> ModelVersion:
        if status in GOVERNED_STATUSES:
            raise Conflict(
                f"A version becomes '{status}' only through governance: run the gates "
                "(keel gates run MODEL VERSION), get the sign-off the policy asks for, then "
                "keel promote MODEL VERSION.",
                {"status": str(status)},
            )
        self._writable(by, model)
        return self.store.set_status(
            model, version, status, by.name, reason, guarded_aliases=GOVERNED_ALIASES
        )

    # -- aliases -------------------------------------------------------------------------------

    def set_alias(self, by: Principal, model: str, alias: str, version: int) -> AliasAssignment:
        check_alias(alias)
        if alias in GOVERNED_ALIASES:
            raise Conflict(
                f"The '{alias}' alias is set only by promotion through governance's gates: "
                "keel promote MODEL VERSION (POST .../versions/{n}/promote).",
                {"alias": alias},
            )
        self._writable(by, model)
        return self.store.set_alias(model, alias, version, by.name)

    def delete_alias(self, by: Principal, model: str, alias: str) -> AliasAssignment:
        check_alias(alias)
        if alias in GOVERNED_ALIASES:
            raise Conflict(
                f"The '{alias}' alias is cleared only by governance (rollback or retirement).",
                {"alias": alias},
            )
        self._writable(by, model)
        return self.store.delete_alias(model, alias, by.name)

    def current_aliases(self, model: str) -> list[AliasAssignment]:
        return self.store.current_aliases(check_name(model, "model"))

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasAssignment]:
        if alias is not None:
            check_alias(alias)
        return self.store.alias_history(check_name(model, "model"), alias)
