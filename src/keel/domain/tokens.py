"""API tokens: 32 random bytes shown once, kept only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

PREFIX = "keel_"


def new_token() -> tuple[str, str]:
    """A fresh token and its digest. Only the digest is ever stored.

    >>> token, digest = new_token()
    >>> token.startswith("keel_"), len(digest), token_digest(token) == digest
    (True, 64, True)
    """
    token = PREFIX + secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def digests_match(presented: str, stored: str) -> bool:
    """Constant-time comparison, so response timing says nothing about how much matched."""
    return hmac.compare_digest(presented.encode(), stored.encode())


def hint(token: str) -> str:
    """What may be shown of a token in listings: its prefix and first characters only."""
    return token[: len(PREFIX) + 4] + "…"


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token besides its secret."""

    id: int
    principal: str
    name: str
    hint: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def usable_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or moment < self.expires_at)
