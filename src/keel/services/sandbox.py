"""The model sandbox: every process that loads a model artifact or runs a model's code runs here.

The security scan is the first wall; this is the second, for the day the scanner is beaten. A
sandboxed process sees:

- its work directory (read-write, at the same absolute path; also its cwd, ``HOME`` and ``TMPDIR``),
  which is the only place it can write;
- read-only: the system directories (``/usr`` and its ``/bin``, ``/lib*`` links, a few ``/etc``
  files), the Python interpreter, the virtual environment, Keel's own package directory, and the
  paths the caller lists in ``readonly``;
- a fresh ``/proc`` of its own PID namespace (the server's command line and environment are not
  there), a minimal ``/dev``;
- no network at all (a new network namespace: not even loopback to the Keel server);
- an environment holding only ``PATH``, ``HOME``, ``TMPDIR``, ``LANG``, ``PYTHONPATH`` (Keel's
  package) and what the caller passes;
- uid/gid 65534 (nobody) in a user namespace, with no capabilities, no further user namespaces;
- CPU, address-space, process-count and file-size limits, and a wall-clock limit after which the
  whole process tree is killed.

Keel's data directory (admin token, SQLite database, artifacts) is never bound; when a configured
data directory or database happens to lie inside a bound path, an empty read-only tmpfs hides it.

**Mechanism: bubblewrap** (``bwrap``, Debian package ``bubblewrap``). It builds the sandbox from
unprivileged Linux namespaces in one ``exec``, needs no daemon and no root set-up, and is the
well-reviewed tool Flatpak uses for the same job. Doing it by hand with ``unshare`` plus mounts
and seccomp would be our own security code; a dedicated unprivileged user needs root to create
and still shares the network and ``/proc``; containers need a daemon. One caveat, handled by
construction: when Keel runs as root, the sandbox's uid maps to host root, so a root-only file
that *were* bound would be readable. Only the directories above are bound, and none of them
holds a secret.

**Fail closed.** When ``bwrap`` is missing or cannot create namespaces, `run_sandboxed` raises
`SandboxUnavailable` and nothing runs. ``KEEL_SANDBOX=none`` is the one explicit opt-out for a
machine without user namespaces: model code then runs as a plain child process (new session,
cleared environment, same limits) with a loud warning, and callers record ``mechanism: "none"``
in their evidence (see `mechanism`). It is an opt-out, never a fallback.
"""

from __future__ import annotations

import io
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

from keel.config import data_dir_from
from keel.errors import KeelError

log = logging.getLogger(__name__)

SANDBOX_ENV = "KEEL_SANDBOX"
OPT_OUT = "none"
INSTALL_HINT = "install bubblewrap: apt-get install bubblewrap"
NOBODY = 65534
# /etc files a Python process may read; none of them is a secret.
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime")
_SYSTEM_DIRS = ("/usr",)
_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_PASSWD = f"nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/usr/sbin/nologin\n"
_GROUP = f"nogroup:x:{NOBODY}:\n"

# Applied inside the sandbox by the interpreter that then becomes the command (``os.execvp``):
# Python's `subprocess` has no thread-safe way to set another process's limits before exec.
_LIMITER = """
import os, resource, sys
for name, value in zip(("AS", "CPU", "NPROC", "FSIZE"), sys.argv[1:5]):
    if value != "-":
        v = int(value)
        resource.setrlimit(getattr(resource, "RLIMIT_" + name), (v, v))
os.execvp(sys.argv[5], sys.argv[5:])
"""


class SandboxUnavailable(KeelError):
    """The sandbox cannot be built here, so Keel refuses to run model code at all."""

    code = "sandbox_unavailable"
    status = 503


@dataclass(frozen=True)
class SandboxLimits:
    wall_seconds: float  # killed (whole process tree) after this
    memory_mb: int  # RLIMIT_AS
    cpu_seconds: int | None = None  # RLIMIT_CPU
    max_processes: int = 256  # RLIMIT_NPROC
    max_file_mb: int = 4096  # RLIMIT_FSIZE


@dataclass(frozen=True)
class SandboxResult:
    returncode: int  # negative: killed by that signal
    output: bytes  # combined stdout+stderr, the tail of it when longer than the limit
    timed_out: bool


def opted_out() -> bool:
    """True when ``KEEL_SANDBOX=none`` asks to run model code without the sandbox."""
    return os.environ.get(SANDBOX_ENV, "").strip().lower() == OPT_OUT


def mechanism() -> str:
    """What isolates model code here: ``"bubblewrap"``, or ``"none"`` when opted out."""
    return OPT_OUT if opted_out() else "bubblewrap"


@cache
def _probe(bwrap: str) -> tuple[bool, str]:
    try:
        done = subprocess.run(
            [bwrap, *_namespace_args(), "--ro-bind", "/", "/", "--", "/bin/true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bubblewrap at {bwrap} could not start ({exc}); {INSTALL_HINT}"
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()
        return False, (
            f"bubblewrap at {bwrap} cannot create namespaces here ({why}). Enable unprivileged "
            f"user namespaces (sysctl kernel.unprivileged_userns_clone=1), or {INSTALL_HINT}"
        )
    return True, f"bubblewrap at {bwrap}"


def sandbox_available() -> tuple[bool, str]:
    """Whether model code can run sandboxed here, and why (or why not)."""
    if opted_out():
        return True, f"{SANDBOX_ENV}=none: model code runs WITHOUT a sandbox"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, f"bubblewrap (bwrap) is not on PATH; {INSTALL_HINT}"
    return _probe(bwrap)


def _namespace_args() -> list[str]:
    return [
        "--unshare-all",  # user, ipc, pid, net, uts, cgroup
        "--unshare-user",
        "--disable-userns",
        "--uid",
        str(NOBODY),
        "--gid",
        str(NOBODY),
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]


def _package_dir() -> Path:
    return Path(__file__).resolve().parents[1]  # the keel package (editable or installed)


def _python_paths() -> list[Path]:
    """What ``python -m keel...`` needs: the interpreter's prefix, the venv, Keel's package."""
    package = _package_dir()
    paths = {Path(sys.base_prefix), Path(sys.prefix), package, Path(sys.executable).parent}
    return sorted({p.resolve() for p in paths if p.exists()})


def _secret_paths() -> list[Path]:
    """Keel's data directory as this process would configure it, and its database file."""
    found = [data_dir_from(os.environ).resolve(), (Path.cwd() / ".keel").resolve()]
    url = os.environ.get("KEEL_DATABASE_URL", "")
    if url.startswith("sqlite:///"):
        found.append(Path(url.removeprefix("sqlite:///")).resolve().parent)
    return found


def _inside(path: Path, parents: Sequence[Path]) -> bool:
    return any(path == p or p in path.parents for p in parents)


# Size of the sandbox's own /dev/shm (a tmpfs that lives only as long as the sandbox).
SHM_BYTES = 512 << 20


def _bwrap_argv(
    bwrap: str, workdir: Path, readonly: Sequence[Path], hide: Sequence[Path], fds: list[int]
) -> list[str]:
    argv = [bwrap, *_namespace_args()]
    for system in _SYSTEM_DIRS:
        argv += ["--ro-bind", system, system]
    for link in map(Path, _SYSTEM_LINKS):
        if link.is_symlink():
            argv += ["--symlink", str(link.readlink()), str(link)]
        elif link.is_dir():
            argv += ["--ro-bind", str(link), str(link)]
    for etc in (Path("/etc", name) for name in _ETC_FILES):
        if etc.exists():
            argv += ["--ro-bind", str(etc), str(etc)]
    for dest, fd in zip(("/etc/passwd", "/etc/group"), fds, strict=True):
        argv += ["--ro-bind-data", str(fd), dest]
    bound = [Path(p).resolve() for p in (*_python_paths(), *readonly)]
    for path in bound:
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--bind", str(workdir), str(workdir)]
    for secret in hide:
        if _inside(secret, [*bound, workdir]) and secret.exists() and secret != workdir:
            argv += ["--perms", "0000", "--size", "4096", "--tmpfs", str(secret)]
            argv += ["--remount-ro", str(secret)]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # A private, bounded /dev/shm: joblib and NumPy share memory between worker processes there
    # (read-only, joblib falls back to serial mode with a warning in every job's output).
    argv += ["--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]  # noqa: S108 - the sandbox's own
    argv += ["--remount-ro", "/dev", "--remount-ro", "/"]
    argv += ["--chdir", str(workdir), "--"]
    return argv


def _limiter(limits: SandboxLimits) -> list[str]:
    def value(v: int | None) -> str:
        return "-" if v is None else str(v)

    return [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _LIMITER,
        value(limits.memory_mb * 1024 * 1024),
        value(limits.cpu_seconds),
        value(limits.max_processes),
        value(limits.max_file_mb * 1024 * 1024),
    ]


def _environment(workdir: Path, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        # Keel's package is bound at its own path; an editable install's .pth may not be read.
        "PYTHONPATH": str(_package_dir().parent),
    }
    env.update(extra or {})
    return env


class _Tail:
    """Reads a pipe to its end on a thread, keeping only the last ``limit`` bytes."""

    def __init__(self, pipe: IO[bytes] | None, limit: int) -> None:
        self._buffer = bytearray()
        self._limit = limit
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[bytes] | None) -> None:
        assert isinstance(pipe, io.BufferedReader)
        while chunk := pipe.read1(65536):
            self._buffer += chunk
            if len(self._buffer) > self._limit:
                del self._buffer[: len(self._buffer) - self._limit]

    def result(self) -> bytes:
        self._thread.join()
        return bytes(self._buffer)


def _kill_tree(child: subprocess.Popen[bytes]) -> None:
    # The child leads its own session; bwrap's PID namespace dies with it (--die-with-parent).
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)


def run_sandboxed(
    argv: Sequence[str],
    *,
    workdir: Path,
    limits: SandboxLimits,
    readonly: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
    output_limit_bytes: int = 1 << 20,
    hide: Sequence[Path] = (),
) -> SandboxResult:
    """Run ``argv`` in the sandbox described above and wait for it (at most ``wall_seconds``).

    ``workdir`` must exist; it is the only writable path. ``hide`` names more paths (besides
    Keel's data directory) to cover with an empty tmpfs should they fall under a bound path.
    Raises `SandboxUnavailable` when the sandbox cannot be built (nothing runs then).
    """
    workdir = Path(workdir).resolve()
    if not workdir.is_dir():
        raise KeelError(f"The sandbox work directory {workdir} does not exist.")
    command = [*_limiter(limits), *argv]
    if opted_out():
        log.warning(
            "%s=none: running %s WITHOUT the model sandbox (no namespaces, no isolation from "
            "Keel's data directory or network)",
            SANDBOX_ENV,
            argv[0] if argv else "?",
        )
        return _run(command, workdir, limits, _environment(workdir, env), output_limit_bytes, [])
    ok, reason = sandbox_available()
    if not ok:
        raise SandboxUnavailable(
            f"Keel runs model code only in its sandbox, which is unavailable: {reason}.",
            {"mechanism": "bubblewrap", "fix": INSTALL_HINT},
        )
    bwrap = shutil.which("bwrap") or "bwrap"
    passwd_r, passwd_w = os.pipe()
    group_r, group_w = os.pipe()
    try:
        for fd, text in ((passwd_w, _PASSWD), (group_w, _GROUP)):
            os.write(fd, text.encode())
            os.close(fd)
        secrets = [*_secret_paths(), *(Path(p).resolve() for p in hide)]
        full = [
            *_bwrap_argv(bwrap, workdir, readonly, secrets, [passwd_r, group_r]),
            *command,
        ]
        return _run(
            full,
            workdir,
            limits,
            _environment(workdir, env),
            output_limit_bytes,
            [passwd_r, group_r],
        )
    finally:
        for fd in (passwd_r, group_r):
            os.close(fd)


def _run(
    argv: list[str],
    workdir: Path,
    limits: SandboxLimits,
    env: dict[str, str],
    output_limit_bytes: int,
    fds: list[int],
) -> SandboxResult:
    child = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        pass_fds=fds,
    )
    tail = _Tail(child.stdout, output_limit_bytes)
    # A pidfd turns readable when the child exits, without reaping it: so the kill below can
    # never hit a process group whose id was reused.
    pidfd = os.pidfd_open(child.pid)
    try:
        exited, _, _ = select.select([pidfd], [], [], limits.wall_seconds)
    finally:
        os.close(pidfd)
        _kill_tree(child)  # the whole session, also what a command left running after exiting
        child.wait()
    timed_out = not exited
    output = tail.result()
    if child.stdout is not None:
        child.stdout.close()
    return SandboxResult(returncode=child.returncode, output=output, timed_out=timed_out)


def start_sandboxed(
    argv: Sequence[str],
    *,
    workdir: Path,
    limits: SandboxLimits,
    env: Mapping[str, str] | None = None,
    readonly: Sequence[Path] = (),
    hide: Sequence[Path] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a long-lived process in the same sandbox as `run_sandboxed`, with pipes
    on its stdin and stdout (its stderr goes to ``workdir/stderr.log``), and return at once.

    For model workers, which answer many requests over their pipes. ``limits.wall_seconds`` is
    not applied here: the caller bounds each request and kills the process (`stop_sandboxed`)
    when one takes too long. Raises `SandboxUnavailable` when the sandbox cannot be built.
    """
    workdir = Path(workdir).resolve()
    if not workdir.is_dir():
        raise KeelError(f"The sandbox work directory {workdir} does not exist.")
    command = [*_limiter(limits), *argv]
    environment = _environment(workdir, env)
    stderr = (workdir / "stderr.log").open("wb")
    try:
        if opted_out():
            log.warning(
                "%s=none: starting %s WITHOUT the model sandbox",
                SANDBOX_ENV,
                argv[0] if argv else "?",
            )
            return _start(command, workdir, environment, stderr, [])
        ok, reason = sandbox_available()
        if not ok:
            raise SandboxUnavailable(
                f"Keel runs model code only in its sandbox, which is unavailable: {reason}.",
                {"mechanism": "bubblewrap", "fix": INSTALL_HINT},
            )
        bwrap = shutil.which("bwrap") or "bwrap"
        passwd_r, passwd_w = os.pipe()
        group_r, group_w = os.pipe()
        try:
            for fd, text in ((passwd_w, _PASSWD), (group_w, _GROUP)):
                os.write(fd, text.encode())
                os.close(fd)
            secrets = [*_secret_paths(), *(Path(p).resolve() for p in hide)]
            prefix = _bwrap_argv(bwrap, workdir, readonly, secrets, [passwd_r, group_r])
            return _start([*prefix, *command], workdir, environment, stderr, [passwd_r, group_r])
        finally:
            for fd in (passwd_r, group_r):
                os.close(fd)
    finally:
        stderr.close()  # the child holds its own copy


def _start(
    argv: list[str], workdir: Path, env: dict[str, str], stderr: IO[bytes], fds: list[int]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        start_new_session=True,
        pass_fds=fds,
        bufsize=0,
    )


def stop_sandboxed(child: subprocess.Popen[bytes]) -> int:
    """Kill a process `start_sandboxed` started, with everything it started, and reap it."""
    if child.returncode is None:
        _kill_tree(child)
    returncode = child.wait()
    for pipe in (child.stdin, child.stdout):
        if pipe is not None:
            with suppress(OSError):
                pipe.close()
    return returncode
