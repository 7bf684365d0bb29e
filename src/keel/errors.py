"""One exception tree for Keel, shared by the server and the SDK.

```
KeelError                      (500 internal_error)
 ├── InvalidInput              (422 invalid_input)
 │    ├── MalformedUpload      (400 malformed_upload)
 │    └── EvaluationFailed     (422 evaluation_failed)
 ├── Unauthenticated           (401 unauthenticated)
 ├── PermissionDenied          (403 permission_denied)
 ├── NotFound                  (404 not_found)
 ├── Conflict                  (409 conflict)
 │    ├── IllegalTransition    (409 illegal_transition)
 │    └── UnsafeArtifact       (409 unsafe_artifact)
 ├── PayloadTooLarge           (413 payload_too_large)
 ├── ArtifactCorrupted         (500 artifact_corrupted)
 ├── NotReady                  (503 not_ready)
 └── TransportError            (client side only: the server could not be reached)
```

Every API error is rendered as ``{"error": {"code", "message", "details"}}`` with the status above,
and the SDK raises the same class again from that envelope.
"""

from __future__ import annotations

from typing import Any, ClassVar


class KeelError(Exception):
    """Base of every error Keel raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(KeelError):
    """A request whose content breaks a rule; the message names the field and the fix."""

    code = "invalid_input"
    status = 422


class MalformedUpload(InvalidInput):
    """A body or file that cannot be parsed at all."""

    code = "malformed_upload"
    status = 400


class Unauthenticated(KeelError):
    code = "unauthenticated"
    status = 401


class PermissionDenied(KeelError):
    code = "permission_denied"
    status = 403


class NotFound(KeelError):
    code = "not_found"
    status = 404


class Conflict(KeelError):
    code = "conflict"
    status = 409


class IllegalTransition(Conflict):
    """A lifecycle change the state machine does not allow."""

    code = "illegal_transition"


class UnsafeArtifact(Conflict):
    """An artifact without a clean security scan: Keel refuses to load it anywhere."""

    code = "unsafe_artifact"


class EvaluationFailed(InvalidInput):
    """The evaluation process could not score the model (timeout, memory, crash, bad columns)."""

    code = "evaluation_failed"


class PayloadTooLarge(KeelError):
    code = "payload_too_large"
    status = 413


class ArtifactCorrupted(KeelError):
    """Stored bytes no longer hash to the address they were stored under."""

    code = "artifact_corrupted"
    status = 500


class NotReady(KeelError):
    code = "not_ready"
    status = 503


class TransportError(KeelError):
    """The SDK could not reach the server, or the server answered something that is not Keel's."""

    code = "transport_error"
    status = 0


ERRORS_BY_CODE: dict[str, type[KeelError]] = {
    cls.code: cls
    for cls in (
        KeelError,
        InvalidInput,
        MalformedUpload,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        Conflict,
        IllegalTransition,
        UnsafeArtifact,
        EvaluationFailed,
        PayloadTooLarge,
        ArtifactCorrupted,
        NotReady,
        TransportError,
    )
}


def error_from_envelope(status: int, body: Any) -> KeelError:
    """Rebuild the typed error from an API error envelope (used by the SDK)."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        cls = ERRORS_BY_CODE.get(str(err.get("code")), KeelError)
        details = err.get("details") if isinstance(err.get("details"), dict) else {}
        return cls(str(err.get("message", "")), details)
    return TransportError(f"Unexpected response from server (HTTP {status}): {str(body)[:200]}")
