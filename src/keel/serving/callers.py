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

    def remembered(self, token: str | None) -> Principal | None:
        """The principal behind ``token`` when it checked out less than `max_age_s` ago; None
        when the identity store must be asked (`principal`). Never touches the store, so the
        gateway calls it on its event loop and asks the store from a thread only on a miss."""
        if not token:
            return None
        seen = self._seen.get(token_digest(token))
        if seen is not None and self._clock() - seen[0] < self.max_age_s:
            return seen[1]
        return None

    def principal(self, token: str | None) -> Principal:
        """The principal behind ``token``; `Unauthenticated` as the identity store says."""
        if not token:
            return self._authenticate(token)
        found = self.remembered(token)
        if found is not None:
            return found
        digest = token_digest(token)
        now = self._clock()
        principal = self._authenticate(token)
        with self._lock:
            if len(self._seen) >= MAX_ENTRIES:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.max_age_s}
                if len(self._seen) >= MAX_ENTRIES:
                    self._seen.clear()
            self._seen[digest] = (now, principal)
        return principal
