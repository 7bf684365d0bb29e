"""Who is calling: bearer tokens checked against the identity store, remembered for a second.

A prediction request must not wait on the metadata store for its token on every call (a read of
the token, its principal and its grants: more than the model itself takes). A token that checked
out is remembered, by its SHA-256 digest, for `MAX_AGE_S`; so a revoked token, a removed grant or
an expired token stops working at the gateway within that second, the same bound as a changed
serving plan. A token that did not check out is never remembered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from keel.domain.permissions import Principal
from keel.domain.tokens import token_digest

MAX_AGE_S = 1.0
MAX_ENTRIES = 10_000


class RecentCallers:
    def __init__(
        self,
        authenticate: Callable[[str | None], Principal],
        *,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._authenticate = authenticate
        self.max_age_s = max_age_s
        self._clock = clock
        self._seen: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def principal(self, token: str | None) -> Principal:
        """The principal behind ``token``; `Unauthenticated` as the identity store says."""
        if not token:
            return self._authenticate(token)
        digest = token_digest(token)
        now = self._clock()
        seen = self._seen.get(digest)
        if seen is not None and now - seen[0] < self.max_age_s:
            return seen[1]
        principal = self._authenticate(token)
        with self._lock:
            if len(self._seen) >= MAX_ENTRIES:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.max_age_s}
                if len(self._seen) >= MAX_ENTRIES:
                    self._seen.clear()
            self._seen[digest] = (now, principal)
        return principal
