"""What an API caller may be allowed to do. Every route declares one of these."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    PUBLIC = "public"  # health, readiness and metrics only
    READ = "read"  # see models, versions, artifacts, aliases
    WRITE = "write"  # register models and versions, move aliases
    ADMIN = "admin"  # manage teams
