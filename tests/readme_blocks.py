"""The README's fenced code blocks, as the doc test (tests/test_readme.py) runs them.

Conventions (README authors, keep to them; the doc test enforces them):

- ```` ```sh ````, ```` ```bash ```` and ```` ```shell ```` blocks run in bash, in order, in one
  terminal session: a variable set in one block is there in the next (``set -eo pipefail``, so a
  failing command fails the block).
- ```` ```python ```` blocks run in one Python session for the whole README, in order: a name
  defined in one block is there in every later block (``client`` from "Python SDK", for example).
- ```` ```yaml ```` and ```` ```json ```` blocks are parsed; when the line right before the fence is
  ``<!-- file: NAME -->``, the block is also saved as NAME in the working directory, for a later
  command to use (``keel alerts apply rules.yaml``).
- A block that cannot run here has ``<!-- doctest: skip: REASON -->`` right before its fence, with
  a reason. ``keel up`` and ``./scripts/up.sh`` must be in such a block: the doc test's own
  ``keel up`` is the reader's server.
- Blocks without a language, or ```` ```text ````, are prose and not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SHELL = frozenset({"sh", "bash", "shell"})
PYTHON = frozenset({"python"})
DATA = frozenset({"yaml", "json"})
PROSE = frozenset({"", "text"})
KNOWN = SHELL | PYTHON | DATA | PROSE

_FENCE = re.compile(r"^(?P<indent> {0,3})```(?P<lang>[A-Za-z0-9_+-]*)\s*$")
_SKIP = re.compile(r"^<!--\s*doctest:\s*skip\s*:?(?P<reason>.*?)-->\s*$")
_FILE = re.compile(r"^<!--\s*file:\s*(?P<name>[^\s]+)\s*-->\s*$")
# A line that would start a second server: the doc test's own `keel up` is the reader's.
_STARTS_A_SERVER = re.compile(r"^\s*(keel|\./scripts/keel)\s+up\b|^\s*\./scripts/up\.sh\b")


class ReadmeError(ValueError):
    """The README breaks a convention above; the message names the line."""


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None = None  # the reason, when the block is marked skip
    file: str | None = None  # where a yaml/json block is saved

    @property
    def first_code_line(self) -> int:
        return self.line + 1

    @property
    def kind(self) -> str:
        if self.lang in SHELL:
            return "shell"
        if self.lang in PYTHON:
            return "python"
        if self.lang in DATA:
            return "data"
        return "prose"


def blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, in order, with its directive; raises `ReadmeError`."""
    lines = text.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if opened is None:
            i += 1
            continue
        start, lang = i, opened["lang"].lower()
        end = start + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ReadmeError(f"README line {start + 1}: this code block is never closed.")
        if lang not in KNOWN:
            raise ReadmeError(
                f"README line {start + 1}: unknown block language {lang!r}; use one of "
                f"{', '.join(sorted(k for k in KNOWN if k))} (text for prose)."
            )
        directive = lines[start - 1].strip() if start > 0 else ""
        skip = file = None
        if directive.startswith("<!--") and "doctest" in directive:
            skipped = _SKIP.match(directive)
            reason = skipped["reason"].strip() if skipped else ""
            if not reason:
                raise ReadmeError(
                    f"README line {start}: a skip needs a reason: <!-- doctest: skip: REASON -->."
                )
            skip = reason
        elif directive.startswith("<!--") and "file:" in directive:
            named = _FILE.match(directive)
            if named is None or lang not in DATA or Path(named["name"]).is_absolute():
                raise ReadmeError(
                    f"README line {start}: <!-- file: NAME --> (a relative path) goes right "
                    "before a yaml or json block."
                )
            file = named["name"]
        code = "\n".join(lines[start + 1 : end]) + "\n"
        block = Block(start + 1, lang, code, skip, file)
        if block.kind == "shell" and skip is None:
            for offset, line in enumerate(lines[start + 1 : end], start=start + 2):
                if _STARTS_A_SERVER.search(line):
                    raise ReadmeError(
                        f"README line {offset}: {line.strip()!r} would start a second server; "
                        "put it in a block marked "
                        "<!-- doctest: skip: the doc test's keel up is this server -->."
                    )
        found.append(block)
        i = end + 1
    return found
