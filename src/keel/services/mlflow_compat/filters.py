"""MLflow's registry search filters: ``clause AND clause ...`` over names, tags and run ids.

A clause is ``<field> <op> <value>``: ``name``, ``tags.<key>`` (or ``tag.`key```),
``run_id``, ``source_path`` and ``version_number`` with ``=``, ``!=``, ``LIKE``, ``ILIKE``
(``%`` and ``_`` wildcards), ``IN (...)``, and ``<``/``>``/``<=``/``>=`` for version numbers.
MLflow's own stores accept the same subset for registered models and versions; anything else
is `InvalidInput` naming the clause.

We parse this small grammar ourselves: the MLflow package is a dev dependency only, and its
parser (sqlparse-based) would bring it into Keel's runtime.

>>> [c.field for c in parse_filter("name LIKE 'churn%' AND tags.team = 'risk'")]
['name', 'tags.team']
>>> parse_filter("name = 'a'")[0].matches("a")
True
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from keel.errors import InvalidInput

_FIELD = r"(?P<field>tags?\.`[^`]+`|tags?\.\"[^\"]+\"|tags?\.[\w.\-]+|[a-z_]+)"
_OP = r"(?P<op>!=|<=|>=|=|<|>|\bNOT\s+ILIKE\b|\bNOT\s+LIKE\b|\bILIKE\b|\bLIKE\b|\bIN\b)"
_STRING = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
_VALUE = rf"(?P<value>{_STRING}|\((?:\s*(?:{_STRING})\s*,?)+\)|-?\d+)"
_CLAUSE = re.compile(rf"\s*{_FIELD}\s*{_OP}\s*{_VALUE}\s*", re.IGNORECASE)
_AND = re.compile(r"\s*AND\s+", re.IGNORECASE)
_ITEM = re.compile(_STRING)


def _unquote(text: str) -> str:
    return text[1:-1].replace("\\'", "'").replace('\\"', '"')


def _like(pattern: str, *, fold: bool) -> Callable[[str], bool]:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    compiled = re.compile(regex, re.IGNORECASE | re.DOTALL if fold else re.DOTALL)
    return lambda value: compiled.fullmatch(value) is not None


@dataclass(frozen=True)
class Clause:
    field: str  # "name", "run_id", "source_path", "version_number" or "tags.<key>"
    op: str
    value: str | int | tuple[str, ...]

    def matches(self, actual: str | int | None) -> bool:
        """Whether ``actual`` (None: the tag is absent) satisfies the clause."""
        if actual is None:
            return self.op == "!="
        if self.op == "IN":
            assert isinstance(self.value, tuple)
            return str(actual) in self.value
        if isinstance(self.value, int):
            number = int(actual)
            return {
                "=": number == self.value,
                "!=": number != self.value,
                "<": number < self.value,
                ">": number > self.value,
                "<=": number <= self.value,
                ">=": number >= self.value,
            }[self.op]
        text, wanted = str(actual), str(self.value)
        if self.op == "=":
            return text == wanted
        if self.op == "!=":
            return text != wanted
        negate = self.op.startswith("NOT")
        found = _like(wanted, fold="ILIKE" in self.op)(text)
        return found != negate


def _invalid(clause: str, why: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid 'filter' clause {clause!r}: {why}. Keel accepts clauses like "
        "name = 'x', name LIKE 'x%', tags.key = 'v', run_id IN ('a', 'b'), joined by AND.",
        {"field": "filter", "clause": clause},
    )


def parse_filter(text: str | None, fields: frozenset[str] = frozenset()) -> list[Clause]:
    """The clauses of ``text``; ``fields`` are the plain fields allowed besides ``tags.*``."""
    allowed = fields or frozenset({"name"})
    clauses: list[Clause] = []
    rest = (text or "").strip()
    while rest:
        found = _CLAUSE.match(rest)
        if found is None:
            raise _invalid(rest[:120], "it does not read as <field> <operator> <value>")
        raw = found.group(0).strip()
        field = found.group("field")
        op = " ".join(found.group("op").upper().split())
        value_text = found.group("value")
        if field.lower().startswith(("tags.", "tag.")):
            key = field.split(".", 1)[1]
            if key[:1] in '`"':
                key = key[1:-1]
            field = f"tags.{key}"
        elif field.lower() not in allowed:
            raise _invalid(raw, f"Keel searches by {', '.join(sorted(allowed))} and tags.<key>")
        else:
            field = field.lower()
        value: str | int | tuple[str, ...]
        if value_text.startswith("("):
            if op != "IN":
                raise _invalid(raw, "a list goes with IN only")
            value = tuple(_unquote(item) for item in _ITEM.findall(value_text))
        elif value_text[:1] in "'\"":
            if op in ("<", ">", "<=", ">="):
                raise _invalid(raw, "only version_number compares with < or >")
            value = _unquote(value_text)
        else:
            if field != "version_number":
                raise _invalid(raw, "quote the value")
            value = int(value_text)
        if op == "IN" and not isinstance(value, tuple):
            raise _invalid(raw, "IN takes a list: ('a', 'b')")
        clauses.append(Clause(field, op, value))
        rest = rest[found.end() :]
        if rest:
            joined = _AND.match(rest)
            if joined is None:
                raise _invalid(rest[:120], "clauses are joined by AND")
            rest = rest[joined.end() :]
            if not rest:
                raise _invalid(text or "", "it ends with AND")
    return clauses
