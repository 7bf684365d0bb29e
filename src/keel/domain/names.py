"""What a team, model or alias may be called.

Names appear in URLs, file paths and shell commands, so they are restricted to a portable set.
"""

from __future__ import annotations

import re

from keel.errors import InvalidInput

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def check_name(value: str, field: str) -> str:
    """Return ``value`` if it is a valid team or model name, else raise `InvalidInput`.

    >>> check_name("churn-model", "name")
    'churn-model'
    >>> check_name("bad name", "name")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keel.errors.InvalidInput: The 'name' field must be ... Got 'bad name' instead.
    """
    if not _NAME.fullmatch(value):
        raise InvalidInput(
            f"The '{field}' field must be 1-128 characters of letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit. Got {value!r} instead.",
            {"field": field},
        )
    return value


def check_alias(value: str) -> str:
    """Return ``value`` if it is a valid alias name (lowercase, not a number).

    >>> check_alias("champion")
    'champion'
    """
    if not _ALIAS.fullmatch(value):
        raise InvalidInput(
            "An alias must be 1-64 characters of lowercase letters, digits, '_' or '-', starting "
            f"with a letter (so it can never be mistaken for a version number). Got {value!r}.",
            {"field": "alias"},
        )
    return value
