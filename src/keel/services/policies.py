"""Policy files: YAML in, a valid `Policy` out, or an error naming the line and the field.

PyYAML's composed node tree keeps each key's position, so a problem `keel.domain.policy` finds
at a field path (``checks.perfomance``) is reported at its line::

    policy.yaml line 7: checks.perfomance: unknown check; known: performance, security, ...

Duplicate keys, which YAML loaders silently resolve to the last one, are refused too. The
defaults Keel ships for each risk tier live next to this module in ``default_policies/``.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import yaml

from keel.domain.policy import Path, Policy, PolicyProblem, dotted, parse_policy
from keel.domain.registry import RiskTier
from keel.errors import InvalidInput

MAX_POLICY_BYTES = 256 * 1024


def _problem(filename: str, line: int | None, field: str, message: str) -> InvalidInput:
    where = f"{filename} line {line}" if line else filename
    return InvalidInput(
        f"{where}: {field}: {message}",
        {"field": field, "line": line, "file": filename},
    )


def _line_of(node: yaml.Node | None, path: Path) -> int | None:
    """The 1-based line of the deepest node along ``path`` (the key's line for a mapping)."""
    line = None if node is None else node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next(
                (
                    (k, v)
                    for k, v in node.value
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part)
                ),
                None,
            )
            if match is None:
                return line
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _duplicates(node: yaml.Node | None, path: Path = ()) -> tuple[Path, int] | None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                return (*path, name), key.start_mark.line + 1
            seen.add(name)
            found = _duplicates(value, (*path, name))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found = _duplicates(item, (*path, index))
            if found:
                return found
    return None


def parse(source: str, filename: str = "policy.yaml") -> Policy:
    """The policy in ``source``, or `InvalidInput` naming the file, line and field at fault."""
    if len(source.encode()) > MAX_POLICY_BYTES:
        raise _problem(
            filename,
            None,
            "(file)",
            f"is over {MAX_POLICY_BYTES // 1024} kB; a policy is a short YAML file",
        )
    try:
        node = yaml.compose(source, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        raise _problem(filename, line, "(syntax)", f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise _problem(filename, None, "(syntax)", f"not valid YAML: {exc}") from None
    duplicate = _duplicates(node)
    if duplicate:
        path, line = duplicate
        raise _problem(filename, line, dotted(path), "appears twice; keep one")
    try:
        return parse_policy(data)
    except PolicyProblem as problem:
        raise _problem(
            filename, _line_of(node, problem.path), dotted(problem.path), problem.message
        ) from None


def digest(source: str) -> str:
    """SHA-256 of the policy's text, as recorded with each version."""
    return hashlib.sha256(source.encode()).hexdigest()


def check_tier(tier: str) -> RiskTier:
    """``tier`` as a `RiskTier`, or `InvalidInput` listing the tiers."""
    try:
        return RiskTier(tier)
    except ValueError:
        known = ", ".join(str(t) for t in RiskTier)
        raise InvalidInput(
            f"Unknown risk tier {tier!r}; the tiers are {known}.", {"field": "tier"}
        ) from None


def default_source(tier: RiskTier) -> str:
    """The YAML of the policy Keel ships for ``tier``."""
    return (resources.files("keel.services") / "default_policies" / f"{tier}.yaml").read_text(
        encoding="utf-8"
    )
