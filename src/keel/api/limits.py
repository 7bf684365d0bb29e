"""Refuse request bodies above a size limit before they are read into memory or onto disk."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Multipart overhead on top of the artifact itself: metadata JSON, boundaries, headers.
UPLOAD_OVERHEAD_BYTES = 2 * 1024 * 1024
# Bulk telemetry bodies (Parquet / Arrow / CSV) get the data-upload limit.
DATA_UPLOAD_SUFFIXES = ("/predictions/upload", "/labels/upload", "/costs/imports")


class BodySizeLimit:
    """Pure ASGI middleware: 413 on a declared Content-Length over the limit, and an aborted
    request when a chunked body grows past it (Starlette's BaseHTTPMiddleware would buffer it).

    Version and evaluation-data uploads get the artifact limit; every other body gets the JSON
    request limit.
    Our own rather than Starlette's ``RequestBodyLimitMiddleware`` because that one answers with
    its own plain body, and ours must answer in the error envelope naming the setting to raise.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_request_bytes: int,
        max_artifact_bytes: int,
        max_data_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_data_upload_bytes = max_data_upload_bytes or max_request_bytes
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_artifact_bytes + UPLOAD_OVERHEAD_BYTES
        self.max_artifact_bytes = max_artifact_bytes

    def _limit(self, scope: Scope) -> tuple[int, str]:
        path = str(scope["path"])
        if (scope["method"] == "POST" and path.endswith(DATA_UPLOAD_SUFFIXES)) or (
            scope["method"] == "PUT" and path.endswith("/reference")
        ):
            return self.max_data_upload_bytes, (
                f"A data upload may be at most {self.max_data_upload_bytes} bytes; send it in "
                "smaller batches, or raise KEEL_MAX_UPLOAD_BYTES on the server."
            )
        if (scope["method"] == "POST" and path.endswith("/versions")) or (
            scope["method"] == "PUT" and path.endswith("/evaluation-data")
        ):
            return self.max_upload_bytes, (
                f"An artifact may be at most {self.max_artifact_bytes} bytes; "
                "raise KEEL_MAX_ARTIFACT_BYTES on the server to allow larger models."
            )
        return self.max_request_bytes, (
            f"A request body may be at most {self.max_request_bytes} bytes; "
            "raise KEEL_MAX_REQUEST_BYTES on the server if you need more."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, message = self._limit(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _reject(send, message, limit)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPException from body parsing (anything else becomes
                    # a 400), and our handler renders it as a 413 envelope.
                    raise HTTPException(413, detail=message)
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            if not started:
                await _reject(send, message, limit)


async def _reject(send: Send, message: str, limit: int) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": message,
                "details": {"limit_bytes": limit},
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
