"""Multipart form fields that must be UTF-8.

Starlette decodes a form field whose bytes are not valid UTF-8 as Latin-1, silently
(``starlette.formparsers._user_safe_decode``), so a version's metadata in another encoding would be
stored as mojibake. Routes of a router built with ``route_class=Utf8FormRoute`` parse multipart
bodies with a parser that notes such fields instead, and `require_utf8_fields` (a dependency, run
once the body is parsed) refuses them with a 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextlib import aclosing
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from keel.errors import InvalidInput

_STATE_KEY = "keel_non_utf8_fields"


class _Utf8Parts(MultiPartParser):
    """Starlette's multipart parser, noting every text field that is not valid UTF-8."""

    non_utf8: list[str]

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            try:
                bytes(part.data).decode("utf-8")
            except UnicodeDecodeError:
                self.non_utf8 = [*getattr(self, "non_utf8", []), part.field_name]
        super().on_part_end()


class _Utf8FormRequest(Request):
    async def _get_form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> FormData:
        content_type, _ = parse_options_header(self.headers.get("Content-Type"))
        if self._form is not None or content_type != b"multipart/form-data":
            return await super()._get_form(
                max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
            )
        try:
            async with aclosing(self.stream()) as stream:
                parser = _Utf8Parts(
                    self.headers,
                    stream,
                    max_files=max_files,
                    max_fields=max_fields,
                    max_part_size=max_part_size,
                )
                self._form = await parser.parse()
        except MultiPartException as exc:  # what Starlette itself answers
            raise HTTPException(status_code=400, detail=exc.message) from None
        setattr(self.state, _STATE_KEY, getattr(parser, "non_utf8", []))
        return self._form


class Utf8FormRoute(APIRoute):
    """A route whose multipart form fields are parsed by `_Utf8Parts`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def utf8_form_handler(request: Request) -> Response:
            return await handler(_Utf8FormRequest(request.scope, request.receive))

        return utf8_form_handler


def require_utf8_fields(request: Request) -> None:
    """Refuse a form with a text field that is not UTF-8 (422 naming the field)."""
    fields = getattr(request.state, _STATE_KEY, [])
    if fields:
        raise InvalidInput(
            f"The form field {fields[0]!r} is not UTF-8: {fields[0]} must be UTF-8 JSON. "
            "Save the file as UTF-8 (or send the JSON with \\u escapes) and try again.",
            {"field": fields[0], "fields": fields},
        )
