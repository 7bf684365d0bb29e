"""The README runs as written: every code block, in order, as a new user runs it from a clone.

A real `keel up` (tests/running_keel.py) on a free port is the reader's server; the working
directory stands in for a fresh clone (``scripts`` and ``.venv`` link to this one's), so
``./scripts/keel`` and ``source .venv/bin/activate`` work as in the README. Shell blocks run in
one bash session with ``.venv/bin`` first on PATH (the README asks readers to activate it) and
``KEEL_URL`` set to the server (its port is not the default 8420); nothing else is set: no
``KEEL_HOME``, no token. Python blocks run in one Python session of the clone's interpreter.
The conventions are in tests/readme_blocks.py.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from tests.readme_blocks import Block, ReadmeError, blocks
from tests.running_keel import keel_up

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV = Path(sys.executable).parent.parent
# A hang guard, not a speed target: a block that registers a model and runs its gates took over
# 150 s on a 2-core machine loaded by other test processes (load average 16).
BLOCK_TIMEOUT_S = 600.0
# Few blocks may be skipped; a new skip above this needs a good reason (and this number raised).
MAX_SKIPS = 6
DONE = "\x00readme-block-done"

# Runs one shell block in the README's terminal session: the variables earlier blocks set are
# restored from $README_STATE, and every variable set so far is saved there again.
_SHELL_WRAPPER = r"""
__readme_before="$(compgen -v | sort)"
[ -f "$README_STATE" ] && source "$README_STATE"
set -eo pipefail
source "$README_BLOCK"
set +eo pipefail
__readme_new="$(comm -13 <(echo "$__readme_before") <(compgen -v | sort) | grep -v '^__readme_')"
[ -z "$__readme_new" ] || declare -p $__readme_new >"$README_STATE" 2>/dev/null
exit 0
"""

# One Python session for the whole README: reads blocks (JSON lines) from stdin, runs each in
# the same namespace, and marks its end on stdout with DONE and "ok" or "failed".
_PYTHON_SESSION = r"""
import json, sys, traceback
namespace = {"__name__": "__main__"}
for message in sys.stdin:
    block = json.loads(message)
    try:
        exec(compile("\n" * (block["line"] - 1) + block["code"], "README.md", "exec"), namespace)
        status = "ok"
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        status = "failed"
    sys.stdout.flush()
    sys.stderr.flush()
    print(DONE, status, flush=True)
""".replace("DONE", repr(DONE))


class PythonSession:
    """The clone's Python, kept running between blocks; its output read by a thread."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [str(VENV / "bin" / "python"), "-u", "-c", _PYTHON_SESSION],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, block: Block) -> tuple[bool, str]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"line": block.line + 1, "code": block.code}) + "\n")
        self.process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + BLOCK_TIMEOUT_S
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False, "".join(output) + f"\n(no end after {BLOCK_TIMEOUT_S:.0f} s)"
            if line is None:
                return False, "".join(output) + "\n(the Python session exited)"
            if line.startswith(DONE):
                return line.split()[-1] == "ok", "".join(output)
            output.append(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def _failure(block: Block, output: str) -> str:
    return (
        f"README.md line {block.line}: this {block.lang} block failed.\n"
        f"--- block ---\n{block.code}--- output ---\n{output}"
    )


def _clone(workdir: Path) -> None:
    """A working directory that looks like a fresh clone to the README's commands."""
    (workdir / "scripts").symlink_to(ROOT / "scripts", target_is_directory=True)
    (workdir / ".venv").symlink_to(VENV, target_is_directory=True)


def _run_shell(block: Block, workdir: Path, env: dict[str, str]) -> None:
    Path(env["README_BLOCK"]).write_text(block.code, encoding="utf-8")
    try:
        done = subprocess.run(
            ["bash", "-c", _SHELL_WRAPPER],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(_failure(block, f"{exc.output or ''}\n(timed out)"))
    assert done.returncode == 0, _failure(block, done.stdout)


def run_blocks(found: list[Block], workdir: Path, env: dict[str, str]) -> int:
    """Run every block that is not skipped or prose, in order; fail at the first that fails,
    naming its README line, its code and its output. Returns how many blocks ran."""
    env = {**env, "README_STATE": str(workdir.parent / "shell-state.sh")}
    env["README_BLOCK"] = str(workdir.parent / "block.sh")
    python = PythonSession(workdir, env)
    ran = 0
    try:
        for block in found:
            if block.skip is not None or block.kind == "prose":
                continue
            ran += 1
            began = time.monotonic()
            if block.kind == "data":
                parsed = (yaml.safe_load if block.lang == "yaml" else json.loads)(block.code)
                assert parsed is not None, f"README.md line {block.line}: empty {block.lang}"
                if block.file is not None:
                    target = workdir / block.file
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(block.code, encoding="utf-8")
            elif block.kind == "python":
                ok, output = python.run(block)
                assert ok, _failure(block, output)
            else:
                _run_shell(block, workdir, env)
            print(f"line {block.line}: {time.monotonic() - began:.1f} s")
    finally:
        python.close()
    return ran


# About 30 blocks and 80 CLI runs: 1.5 to 4.5 minutes on a 2-core machine, depending on its load.
@pytest.mark.timeout(2400)
def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    found = blocks(README.read_text(encoding="utf-8"))
    skipped = [b for b in found if b.skip is not None]
    assert len(skipped) <= MAX_SKIPS, "\n".join(f"line {b.line}: {b.skip}" for b in skipped)
    workdir = tmp_path / "clone"
    workdir.mkdir()
    _clone(workdir)
    with keel_up(tmp_path, cwd=workdir) as server:
        env = {k: v for k, v in os.environ.items() if k not in ("KEEL_HOME", "KEEL_TOKEN")}
        env.update(
            KEEL_URL=server.url,
            PATH=f"{workdir / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        ran = run_blocks(found, workdir, env)
    print(f"README: {ran} blocks ran, {len(skipped)} skipped")
    for block in skipped:
        print(f"  skipped line {block.line}: {block.skip}")


# -- the runner, on small READMEs -----------------------------------------------------------------


def _small_readme(tmp_path: Path, text: str) -> tuple[list[Block], Path]:
    workdir = tmp_path / "clone"
    workdir.mkdir()
    return blocks(text), workdir


def test_blocks_share_one_shell_session_one_python_session_and_saved_files(
    tmp_path: Path,
) -> None:
    text = "\n".join(
        [
            "```sh",
            'GREETING="hello"',
            "```",
            "<!-- file: conf/answer.json -->",
            "```json",
            '{"answer": 42}',
            "```",
            "```sh",
            'GREETING="$GREETING again"',
            "```",
            "```python",
            "import json",
            "answer = json.load(open('conf/answer.json'))['answer']",
            "```",
            "```python",
            "assert answer == 42",
            "```",
            "```bash",
            'test "$GREETING" = "hello again"',
            "```",
        ]
    )
    found, workdir = _small_readme(tmp_path, text)
    assert run_blocks(found, workdir, dict(os.environ)) == 6
    assert (workdir / "conf" / "answer.json").read_text() == '{"answer": 42}\n'


def test_a_failing_shell_block_fails_naming_its_line_command_and_output(tmp_path: Path) -> None:
    found, workdir = _small_readme(
        tmp_path, "Intro\n\n```sh\necho first output\nfalse\necho never\n```\n"
    )
    with pytest.raises(AssertionError) as failed:
        run_blocks(found, workdir, dict(os.environ))
    message = str(failed.value)
    assert "README.md line 3: this sh block failed" in message
    code, output = message.split("--- output ---")
    assert [line.strip() for line in code.splitlines()[-4:-1]] == [
        "echo first output",
        "false",
        "echo never",
    ]
    assert "first output" in output and "never" not in output  # it stopped at the failure


def test_a_failing_python_block_fails_with_the_readme_line_of_the_error(tmp_path: Path) -> None:
    found, workdir = _small_readme(tmp_path, "```python\nx = 1\n```\n\n```python\ny = x + z\n```\n")
    with pytest.raises(AssertionError) as failed:
        run_blocks(found, workdir, dict(os.environ))
    message = str(failed.value)
    assert "README.md line 5: this python block failed" in message
    assert 'File "README.md", line 6' in message and "NameError" in message


# -- the conventions themselves -------------------------------------------------------------------


def test_blocks_carry_their_line_language_and_directives() -> None:
    text = "\n".join(
        [
            "# Title",  # 1
            "```sh",  # 2
            "keel models list",
            "```",
            "<!-- file: rules.yaml -->",  # 5
            "```yaml",  # 6
            "model: churn",
            "```",
            "<!-- doctest: skip: needs a PostgreSQL host -->",
            "```bash",  # 10
            "keel up --host 0.0.0.0",
            "```",
            "```",  # 13
            "performance -> security",
            "```",
        ]
    )
    got = blocks(text)
    assert [(b.line, b.kind, b.file, b.skip) for b in got] == [
        (2, "shell", None, None),
        (6, "data", "rules.yaml", None),
        (10, "shell", None, "needs a PostgreSQL host"),
        (13, "prose", None, None),
    ]
    assert got[0].code == "keel models list\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- doctest: skip -->\n```sh\nls\n```", "line 1: a skip needs a reason"),
        ("<!-- doctest: skip:   -->\n```sh\nls\n```", "line 1: a skip needs a reason"),
        ("<!-- file: a.yaml -->\n```sh\nls\n```", "line 1: <!-- file: NAME -->"),
        ("<!-- file: /etc/a.yaml -->\n```yaml\na: 1\n```", "line 1: <!-- file: NAME -->"),
        ("text\n```ruby\nputs 1\n```", "line 2: unknown block language 'ruby'"),
        ("```sh\nls\n", "line 1: this code block is never closed"),
        ("```sh\nkeel teams list\nkeel up --port 9000\n```", "line 3: 'keel up --port 9000'"),
        ("```bash\n./scripts/up.sh\n```", "line 2: './scripts/up.sh' would start"),
    ],
)
def test_a_readme_that_breaks_a_convention_is_refused_naming_the_line(
    text: str, message: str
) -> None:
    with pytest.raises(ReadmeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        blocks(text)
