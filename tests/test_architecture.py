"""The import arrows of ARCHITECTURE.md hold: the contracts in .importlinter are kept, the check
really fails when an arrow is broken, and the stdlib-only packages import only the stdlib."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import keel

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = REPO_ROOT / ".importlinter"
PACKAGE_DIR = Path(keel.__file__).resolve().parent

# Run import-linter's own command with this interpreter (no dependency on PATH or a venv layout).
LINT_IMPORTS = [
    sys.executable,
    "-c",
    "from importlinter.cli import lint_imports_command; lint_imports_command()",
]


def run_contracts(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(pythonpath), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    return subprocess.run(
        [*LINT_IMPORTS, "--config", str(CONFIG), "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_import_contracts_are_kept() -> None:
    result = run_contracts(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken." in result.stdout, result.stdout


def test_import_contracts_fail_on_a_broken_arrow(tmp_path: Path) -> None:
    copy = tmp_path / "keel"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "domain" / "arch_probe.py").write_text(
        '"""Breaks: domain is stdlib only."""\n\nimport sqlalchemy\n'
    )
    (copy / "store" / "arch_probe.py").write_text(
        '"""Breaks: store must not import api."""\n\nimport keel.api\n'
    )

    # Prove the copy, not the installed tree, is what gets analysed.
    probe = subprocess.run(
        [sys.executable, "-c", "import keel; print(keel.__file__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(probe.stdout.strip()).resolve().parent == copy.resolve()

    result = run_contracts(tmp_path, pythonpath=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "keel.domain.arch_probe -> sqlalchemy" in output, output
    assert "keel.store.arch_probe -> keel.api" in output, output
    assert "BROKEN" in output, output


def _external_imports(graph: grimp.ImportGraph, package: str) -> dict[str, set[str]]:
    """{external top-level package: {importing modules}} for every module in ``package``."""
    modules = {package, *graph.find_descendants(package)}
    found: dict[str, set[str]] = {}
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != "keel" and not imported.startswith("keel."):
                found.setdefault(imported.split(".")[0], set()).add(module)
    return found


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("keel", include_external_packages=True, cache_dir=None)


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("keel.domain", frozenset()),
        ("keel.errors", frozenset()),
        ("keel.config", frozenset()),
        ("keel.stats", frozenset({"numpy", "scipy"})),
    ],
)
def test_pure_packages_import_only_the_standard_library(
    graph: grimp.ImportGraph, package: str, allowed: frozenset[str]
) -> None:
    external = _external_imports(graph, package)
    offending = {
        name: sorted(importers)
        for name, importers in external.items()
        if name not in sys.stdlib_module_names and name not in allowed
    }
    assert not offending, f"{package} may import only the stdlib and {sorted(allowed)}: {offending}"
