"""The lifecycle of a model version, as a state machine.

```
registered ──> candidate ──> approved ──> production ──> retired
     │  ^           │            │                        │   │
     │  └───────────┘ (rejected) └──> candidate (re-run)  │   └──> production (rollback)
     └──────────────┴────────────┴──> archived <──────────┘
```
"""

from __future__ import annotations

from enum import StrEnum

from keel.errors import IllegalTransition


class VersionStatus(StrEnum):
    REGISTERED = "registered"
    CANDIDATE = "candidate"
    APPROVED = "approved"
    PRODUCTION = "production"
    RETIRED = "retired"
    ARCHIVED = "archived"


ALLOWED_TRANSITIONS: dict[VersionStatus, frozenset[VersionStatus]] = {
    VersionStatus.REGISTERED: frozenset({VersionStatus.CANDIDATE, VersionStatus.ARCHIVED}),
    VersionStatus.CANDIDATE: frozenset(
        {VersionStatus.APPROVED, VersionStatus.REGISTERED, VersionStatus.ARCHIVED}
    ),
    VersionStatus.APPROVED: frozenset(
        {VersionStatus.PRODUCTION, VersionStatus.CANDIDATE, VersionStatus.ARCHIVED}
    ),
    VersionStatus.PRODUCTION: frozenset({VersionStatus.RETIRED}),
    VersionStatus.RETIRED: frozenset({VersionStatus.PRODUCTION, VersionStatus.ARCHIVED}),
    VersionStatus.ARCHIVED: frozenset(),
}

# Entering or leaving production changes what serves traffic; only the governance service's
# promotion path may do it, so the plain status endpoint refuses these targets.
GOVERNED_STATUSES = frozenset({VersionStatus.PRODUCTION, VersionStatus.APPROVED})


def check_transition(current: VersionStatus, target: VersionStatus) -> None:
    """Raise `IllegalTransition` unless ``current -> target`` is allowed.

    >>> check_transition(VersionStatus.REGISTERED, VersionStatus.CANDIDATE)
    >>> check_transition(VersionStatus.ARCHIVED, VersionStatus.CANDIDATE)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keel.errors.IllegalTransition: Cannot move a version ... 'archived' is final.
    """
    allowed = ALLOWED_TRANSITIONS[current]
    if target in allowed:
        return
    if current == target:
        message = f"The version is already '{current}'."
    elif not allowed:
        message = f"Cannot move a version from '{current}' to '{target}': '{current}' is final."
    else:
        options = ", ".join(sorted(f"'{s}'" for s in allowed))
        message = (
            f"Cannot move a version from '{current}' to '{target}'. "
            f"From '{current}' it can move to {options}."
        )
    raise IllegalTransition(
        message,
        {"from": str(current), "to": str(target), "allowed": sorted(str(s) for s in allowed)},
    )
