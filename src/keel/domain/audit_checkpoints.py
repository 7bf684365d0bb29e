"""Signatures that someone with write access to the database cannot make.

The hash chain (`keel.domain.audit`) shows that events were changed, as long as the forger did not
recompute the hashes; anyone who can write the database can. So Keel also holds a secret key that
is not in the database (a file on the Keel host) and uses it twice:

- every event is signed when it is written: ``HMAC-SHA256(key, "keel-audit-event" || hash)``.
  The hash covers the event's content, position and everything before it, so a forged or
  rewritten event cannot carry a valid signature without the key;
- a *checkpoint* signs the chain's head at a moment, ``(seq, hash, at, unsigned_until)``, and is
  exported where the database's writer cannot rewrite it (a file outside the database, a
  webhook receiver). A chain shorter than a checkpoint has been truncated; an event whose hash
  differs from a checkpoint's was rewritten.

HMAC from the standard library rather than a public-key signature: the server both signs and
verifies, so there is no party that should verify without being able to sign, and no dependency.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KEY_BYTES = 32


class AuditKey:
    """The secret that signs events and checkpoints; never stored in the database or logged."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise ValueError(f"an audit key has at least {KEY_BYTES} bytes, got {len(secret)}")
        self._secret = secret

    def __repr__(self) -> str:
        return f"AuditKey(id={self.key_id})"

    def _mac(self, message: str) -> str:
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    @property
    def key_id(self) -> str:
        """A short public name of the key, to tell "another key" apart from "forged"."""
        return self._mac("keel-audit-key-id")[:16]

    def sign_event(self, event_hash: str) -> str:
        return self._mac(f"keel-audit-event\n{event_hash}")

    def event_holds(self, event_hash: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign_event(event_hash), signature)

    def checkpoint(self, seq: int, head_hash: str, at: datetime, unsigned_until: int) -> Checkpoint:
        """Sign the head ``(seq, head_hash)`` as seen at ``at``."""
        unsigned = Checkpoint(seq, head_hash, at.astimezone(UTC), unsigned_until, self.key_id, "")
        return Checkpoint(**{**vars(unsigned), "signature": self._mac(unsigned.message())})

    def checkpoint_holds(self, checkpoint: Checkpoint) -> bool:
        return hmac.compare_digest(self._mac(checkpoint.message()), checkpoint.signature)

    def subkey(self, purpose: str) -> bytes:
        """A separate key for another ``purpose`` (HMAC as a key-derivation function): knowing
        it tells nothing of the audit key, and it signs nothing the audit trail accepts."""
        return hmac.new(self._secret, f"keel-subkey\n{purpose}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: at ``at`` the chain's head was event ``seq`` with hash ``hash``.

    ``unsigned_until`` is the last event written before events were signed (legacy events of
    an older Keel); every event after it must carry a valid signature.
    """

    seq: int
    hash: str
    at: datetime
    unsigned_until: int
    key_id: str
    signature: str

    def message(self) -> str:
        at = self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"keel-audit-checkpoint\n{self.seq}\n{self.hash}\n{at}\n{self.unsigned_until}"

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "at": self.at.astimezone(UTC).isoformat()}

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """Parse one exported checkpoint; ``ValueError`` names what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a checkpoint is a JSON object")
        try:
            seq, unsigned_until = data["seq"], data["unsigned_until"]
            texts = [data["hash"], data["key_id"], data["signature"], data["at"]]
        except KeyError as missing:
            raise ValueError(f"the field {missing} is missing") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seq, unsigned_until)):
            raise ValueError("seq and unsigned_until must be whole numbers")
        if not all(isinstance(v, str) for v in texts):
            raise ValueError("hash, key_id, signature and at must be strings")
        at = datetime.fromisoformat(data["at"])
        if at.tzinfo is None:
            raise ValueError("at must carry a time zone")
        return cls(seq, data["hash"], at, unsigned_until, data["key_id"], data["signature"])
