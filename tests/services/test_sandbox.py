"""The model sandbox, with real processes: a malicious model that the scanner missed gets nothing.

The "scanner-clean" model here is a pickle whose ``__reduce__`` runs a payload. The scanner does
flag it, so each test stores a clean scan report for it by hand: exactly what a scanner bypass
would produce. The same payload run as a plain child process (the control) does reach every
secret, so these tests fail if the sandbox stops isolating.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.services.evaluation_fixtures import (
    SIGNATURE,
    attach,
    dataset,
    fair_model,
    joblib_bytes,
    open_backend,
    register,
)

from keel.config import ADMIN_TOKEN_FILE
from keel.domain.evaluation import EvaluationSpec, ScanReport
from keel.domain.registry import ModelVersion
from keel.errors import EvaluationFailed
from keel.services.backend import Backend
from keel.services.sandbox import (
    SandboxLimits,
    SandboxUnavailable,
    mechanism,
    run_sandboxed,
    sandbox_available,
)
from keel.services.scanning import SCANNER, SCANNER_VERSION

SECRET = "s3cr3t-value-the-model-must-not-see"
TOKEN = "keel-admin-token-the-model-must-not-see"
LIMITS = SandboxLimits(wall_seconds=120, memory_mb=2048)

# Each probe records what it got, or the error that stopped it.
PAYLOAD = r"""
import json, os, socket
loot = {}
def grab(name, fn):
    try:
        loot[name] = fn()
    except Exception as exc:
        loot[name] = "refused: " + type(exc).__name__
def read(path):
    with open(path, "rb") as f:
        return f.read().decode("latin-1")
def environ_with_secret():
    found = []
    for pid in os.listdir("/proc"):
        try:
            if SECRET in read(f"/proc/{pid}/environ"):
                found.append(pid)
        except OSError:
            pass
    return found or "refused: no process environment holds it"
def connect():
    with socket.create_connection(("127.0.0.1", PORT), timeout=10):
        return "connected"
def write_outside():
    with open(OUTSIDE, "w") as f:
        f.write("pwned")
    return "written"
grab("admin_token", lambda: read(TOKEN_PATH))
grab("database", lambda: read(DB_PATH)[:16])
grab("server_cmdline", lambda: read(f"/proc/{SERVER_PID}/cmdline"))
grab("server_environ", lambda: read(f"/proc/{SERVER_PID}/environ"))
grab("parent_cmdline", lambda: read(f"/proc/{os.getppid()}/cmdline"))
grab("any_environ_with_secret", environ_with_secret)
grab("own_keel_env", lambda: sorted(k for k, v in os.environ.items()
                                    if k.startswith("KEEL_") or SECRET in v) or "refused: none")
grab("socket", connect)
grab("write_outside", write_outside)
with open("loot.json", "w") as f:
    json.dump(loot, f)
raise RuntimeError("LOOT" + json.dumps(loot) + "TOOL")
"""


class Malicious:
    """Unpickling executes ``code`` (the payload with its targets filled in)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (self.code, {}))


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = open_backend(tmp_path / "keel")
    yield opened
    opened.close()


SERVER = """
import socket, sys
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
sys.stdin.read()  # serve until the test closes stdin
"""


@dataclass(frozen=True)
class Server:
    pid: int
    port: int


@pytest.fixture
def server() -> Iterator[Server]:
    """A real process listening on loopback, standing in for ``keel up``: the admin token on its
    command line and a secret in its environment."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, f"--admin-token={TOKEN}"],
        env={**os.environ, "KEEL_FAKE_SECRET": SECRET},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdin is not None
    port = int(process.stdout.readline())
    yield Server(process.pid, port)
    process.stdin.close()
    process.wait(timeout=60)
    process.stdout.close()


def payload(data_dir: Path, server: Server, outside: Path) -> str:
    targets = {
        "SECRET": SECRET,
        "TOKEN_PATH": str(data_dir / ADMIN_TOKEN_FILE),
        "DB_PATH": str(data_dir / "keel.db"),
        "SERVER_PID": server.pid,
        "PORT": server.port,
        "OUTSIDE": str(outside),
    }
    return "".join(f"{k} = {v!r}\n" for k, v in targets.items()) + PAYLOAD


def register_as_if_scanned_clean(
    backend: Backend, artifact: bytes, filename: str = "model.pkl"
) -> ModelVersion:
    """What a scanner bypass amounts to: a clean report on record for a malicious artifact."""
    scanner, backend.registry.scanner = backend.registry.scanner, None
    try:
        version = register(backend, artifact, filename)
    finally:
        backend.registry.scanner = scanner
    backend.evaluation.store.save_scan(
        ScanReport(version.artifact.sha256, SCANNER, SCANNER_VERSION, True, (), datetime.now(UTC)),
        "test",
    )
    return version


def loot_of(message: str) -> dict[str, Any]:
    found = re.search(r"LOOT(.*?)TOOL", message)
    assert found is not None, message
    loot: dict[str, Any] = json.loads(found.group(1))
    return loot


def got(loot: dict[str, Any]) -> dict[str, Any]:
    """The probes that succeeded."""
    return {k: v for k, v in loot.items() if not (isinstance(v, str) and v.startswith("refused"))}


def test_a_malicious_model_the_scanner_missed_gets_none_of_the_servers_secrets(
    backend: Backend, tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "keel"
    (data_dir / ADMIN_TOKEN_FILE).write_text(TOKEN)
    assert (data_dir / "keel.db").exists()
    monkeypatch.setenv("KEEL_FAKE_SECRET", SECRET)  # the evaluating process has it too
    (tmp_path / "outside").mkdir()
    outside = tmp_path / "outside" / "pwned"
    evil = pickle.dumps(Malicious(payload(data_dir, server, outside)))

    # Control: the same bytes unpickled by a plain child process of the "server" get it all.
    control_dir = tmp_path / "control"
    control_dir.mkdir()
    (control_dir / "model.pkl").write_bytes(evil)
    subprocess.run(
        [sys.executable, "-c", "import pickle; pickle.load(open('model.pkl', 'rb'))"],
        cwd=control_dir,
        capture_output=True,
        check=False,
    )
    control = json.loads((control_dir / "loot.json").read_text())
    assert control["admin_token"] == TOKEN
    assert control["database"].startswith("SQLite format 3")
    assert TOKEN in control["server_cmdline"]
    # Unsandboxed, its parent is this test process (a pytest-xdist worker has no "pytest" in it).
    own = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().decode("latin-1")
    assert control["parent_cmdline"] == own
    assert SECRET in control["server_environ"]
    assert control["any_environ_with_secret"]
    assert "KEEL_FAKE_SECRET" in control["own_keel_env"]
    assert control["socket"] == "connected"
    assert control["write_outside"] == "written"
    outside.unlink()

    # The gate evaluation of that model, as if the scanner had passed it: sandboxed, it gets none.
    version = register_as_if_scanned_clean(backend, evil)
    attach(backend, version.version, dataset())
    with pytest.raises(EvaluationFailed) as caught:
        backend.evaluation.evaluate(
            "churn", version.version, EvaluationSpec.from_signature(SIGNATURE)
        )
    loot = loot_of(caught.value.message)
    assert set(loot) == set(control)  # every probe ran
    # Its parent is the sandbox's own init (bubblewrap), not the process that evaluates.
    parent = loot.pop("parent_cmdline")
    assert parent.startswith("/usr/bin/bwrap") or parent.startswith("refused")
    assert parent != own and "pytest" not in parent and SECRET not in parent
    assert got(loot) == {}, loot
    assert not outside.exists()


def test_the_sandbox_sees_only_its_workdir_the_interpreter_and_system_files(
    tmp_path: Path,
) -> None:
    workdir, shared = tmp_path / "work", tmp_path / "shared"
    workdir.mkdir()
    shared.mkdir()
    (shared / "data.csv").write_text("a,b\n1,2\n")
    probe = """
import json, os
def try_write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False
print(json.dumps({
    "uid": os.getuid(), "cwd": os.getcwd(), "env": dict(os.environ),
    "root": sorted(os.listdir("/")), "etc": sorted(os.listdir("/etc")),
    "proc_pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "shared": open(SHARED + "/data.csv").read(),
    "write_shared": try_write(SHARED + "/new"), "write_root": try_write("/pwned"),
    "write_tmp": try_write("/tmp/pwned"), "write_workdir": try_write("mine.txt"),
    "shadow": os.path.exists("/etc/shadow"), "tmp_path": os.path.exists(TMP),
    "home_of_root": sorted(os.listdir("/root")) if os.path.isdir("/root") else [],
}))
"""
    code = f"SHARED = {str(shared)!r}\nTMP = {str(tmp_path / 'other')!r}\n" + probe
    (tmp_path / "other").mkdir()
    ran = run_sandboxed(
        [sys.executable, "-c", code],
        workdir=workdir,
        limits=LIMITS,
        readonly=[shared],
        env={"EXTRA": "given"},
    )
    assert ran.returncode == 0, ran.output
    seen = json.loads(ran.output)
    assert seen["uid"] == 65534
    assert seen["cwd"] == str(workdir)
    assert seen["env"]["HOME"] == seen["env"]["TMPDIR"] == str(workdir)
    assert seen["env"]["EXTRA"] == "given"
    assert not [k for k in seen["env"] if k.startswith("KEEL_")]
    assert set(seen["etc"]) <= {
        "ld.so.cache",
        "ld.so.conf",
        "ld.so.conf.d",
        "alternatives",
        "localtime",
        "passwd",
        "group",
    }
    assert not seen["shadow"]
    assert set(seen["home_of_root"]) <= {".pyenv"}  # at most the interpreter's own directory
    assert max(seen["proc_pids"]) < 10  # its own PID namespace: none of the host's processes
    assert seen["shared"] == "a,b\n1,2\n"
    assert not seen["write_shared"] and not seen["write_root"] and not seen["write_tmp"]
    assert seen["write_workdir"] and (workdir / "mine.txt").read_text() == "x"
    assert not seen["tmp_path"]  # siblings of the bound paths are not there
    assert not (shared / "new").exists()


def test_a_data_dir_under_a_bound_path_is_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound = tmp_path / "checkout"
    (bound / ".keel").mkdir(parents=True)
    (bound / ".keel" / ADMIN_TOKEN_FILE).write_text(TOKEN)
    (bound / "code.py").write_text("visible")
    monkeypatch.setenv("KEEL_HOME", str(bound / ".keel"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    ran = run_sandboxed(
        ["/bin/sh", "-c", f"cat {bound}/code.py; cat {bound}/.keel/{ADMIN_TOKEN_FILE}"],
        workdir=workdir,
        limits=LIMITS,
        readonly=[bound],
    )
    assert ran.output.startswith(b"visible")
    assert TOKEN.encode() not in ran.output
    assert ran.returncode != 0


def _running(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(pid)
        except OSError:
            pass
    return found


def test_an_endless_loop_is_killed_with_its_whole_tree_at_the_wall_clock_limit(
    tmp_path: Path,
) -> None:
    marker = f"{os.getpid() % 997 + 1000}.{int.from_bytes(os.urandom(3), 'big')}"
    ran = run_sandboxed(
        ["/bin/sh", "-c", f"sleep {marker} & echo started; exec sh -c 'while :; do :; done'"],
        workdir=tmp_path,
        limits=SandboxLimits(wall_seconds=2, memory_mb=512),
    )
    assert ran.timed_out
    assert ran.returncode == -9
    assert ran.output == b"started\n"  # the background sleep was running
    deadline = time.monotonic() + 30
    while _running(f"sleep\0{marker}") and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the kernel to finish tearing the namespace down
    assert _running(f"sleep\0{marker}") == []


def test_a_memory_hog_hits_the_address_space_limit(tmp_path: Path) -> None:
    ran = run_sandboxed(
        [sys.executable, "-c", "x = bytearray(2 * 1024 ** 3)"],
        workdir=tmp_path,
        limits=SandboxLimits(wall_seconds=60, memory_mb=512),
    )
    assert not ran.timed_out
    assert ran.returncode == 1
    assert b"MemoryError" in ran.output


def test_output_keeps_its_tail_within_the_limit(tmp_path: Path) -> None:
    ran = run_sandboxed(
        [sys.executable, "-c", "print('x' * 100000); print('the end')"],
        workdir=tmp_path,
        limits=LIMITS,
        output_limit_bytes=1000,
    )
    assert len(ran.output) == 1000
    assert ran.output.endswith(b"the end\n")


def test_no_bubblewrap_means_nothing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without bwrap
    ok, reason = sandbox_available()
    assert not ok and "apt-get install bubblewrap" in reason
    marker = tmp_path / "ran"
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        run_sandboxed(["/usr/bin/touch", str(marker)], workdir=tmp_path, limits=LIMITS)
    assert not marker.exists()


def test_the_opt_out_runs_unsandboxed_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KEEL_SANDBOX", "none")
    monkeypatch.setenv("KEEL_FAKE_SECRET", SECRET)
    secret_file = tmp_path / "host-file"
    secret_file.write_text("host")
    workdir = tmp_path / "work"
    workdir.mkdir()
    assert mechanism() == "none"
    with caplog.at_level(logging.WARNING, logger="keel.services.sandbox"):
        ran = run_sandboxed(
            ["/bin/sh", "-c", f"cat {secret_file}; echo; env"], workdir=workdir, limits=LIMITS
        )
    assert ran.output.startswith(b"host")  # no isolation from the host's files ...
    assert SECRET.encode() not in ran.output  # ... but still a cleared environment
    assert "WITHOUT the model sandbox" in caplog.text


@pytest.mark.parametrize("opt_out", [False, True], ids=["sandboxed", "opted-out"])
def test_gate_evaluation_records_the_sandbox(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, opt_out: bool
) -> None:
    if opt_out:
        monkeypatch.setenv("KEEL_SANDBOX", "none")
    version = register(backend, joblib_bytes(fair_model(dataset(seed=1))))
    attach(backend, version.version, dataset(seed=2))
    report = backend.evaluation.evaluate(
        "churn", version.version, EvaluationSpec.from_signature(SIGNATURE)
    )
    assert report.sandbox == ("none" if opt_out else "bubblewrap")
