"""Redacting secrets from text that people will read (a retraining job's output).

What is redacted, in this order:

1. every known secret value given (the admin token, webhook signing secrets, the values of the
   server's environment variables whose names look secret), wherever it appears;
2. anything shaped like a Keel API token (``keel_`` and at least 16 URL-safe characters);
3. the password in a URL's user information (``postgresql://user:PASSWORD@host``);
4. the value in ``NAME=value`` or ``NAME: value`` when NAME looks secret
   (``AWS_SECRET_ACCESS_KEY=…``).

A name looks secret when it contains TOKEN, SECRET, PASSWORD, PASSWD, KEY, CREDENTIAL or AUTH,
or starts with AWS_. Known values shorter than `MIN_SECRET_CHARS` are not searched for: replacing
every "1" or "yes" would hide the output without protecting anything.

Written here rather than taken from a library: the rules are Keel's own (its token format, its
secrets), and the function is a few regular expressions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from keel.domain.tokens import PREFIX

REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 8
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL|AUTH|^AWS_", re.IGNORECASE)
_TOKEN = re.compile(re.escape(PREFIX) + r"[A-Za-z0-9_\-]{16,}")
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^\s@/]+(?=@)")
_ASSIGNMENT = re.compile(
    r"(?P<head>\b[A-Za-z0-9_.\-]*(?:TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL|AUTH)"
    r"[A-Za-z0-9_.\-]*[\"']?\s*[=:]\s*[\"']?)[^\s\"',;]+",
    re.IGNORECASE,
)


def looks_secret(name: str) -> bool:
    """Whether an environment variable's name says its value is a secret.

    >>> looks_secret("KEEL_TOKEN"), looks_secret("AWS_REGION"), looks_secret("HOME")
    (True, True, False)
    """
    return bool(_SECRET_NAME.search(name))


def secret_values(environment: Mapping[str, str]) -> list[str]:
    """The values of the variables in ``environment`` whose names look secret."""
    return [value for name, value in environment.items() if looks_secret(name) and value]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the known ``secrets`` and anything that looks like one replaced.

    >>> redact("token keel_" + "a" * 43 + " ok")
    'token keel_[REDACTED] ok'
    >>> redact("db postgresql://keel:hunter22@db/keel")
    'db postgresql://keel:[REDACTED]@db/keel'
    >>> redact("AWS_SECRET_ACCESS_KEY=abc123xyz loaded")
    'AWS_SECRET_ACCESS_KEY=[REDACTED] loaded'
    >>> redact("sig s3cr3t-signing-key!", ["s3cr3t-signing-key!"])
    'sig [REDACTED]'
    """
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _TOKEN.sub(PREFIX + REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)
    return _ASSIGNMENT.sub(lambda m: m["head"] + REDACTED, text)
