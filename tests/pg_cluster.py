"""A real PostgreSQL server for tests.

Contract (the fixtures ``postgres_url`` and ``postgres_database_url`` in ``tests/conftest.py``):

* ``KEEL_TEST_DATABASE_URL`` set: tests use that server, given as a SQLAlchemy URL such as
  ``postgresql+psycopg://user:pw@127.0.0.1:5432/postgres``. The role must be allowed to
  ``CREATE DATABASE``.
* unset, and PostgreSQL server binaries exist in ``/usr/lib/postgresql/*/bin``: a throwaway
  cluster is created in a temporary directory (``initdb``), listening only on 127.0.0.1 on a
  free port with its unix sockets inside that directory, and is stopped and deleted at the end of
  the test session. As root, ``initdb``/``pg_ctl`` run as the ``postgres`` system user (PostgreSQL
  refuses to run as root).
* neither: PostgreSQL tests are skipped, or fail when ``KEEL_REQUIRE_POSTGRES=1`` (CI sets it, so
  a broken CI setup cannot pass by skipping every PostgreSQL test).

``fresh_database`` creates a brand-new empty database ``keel_test_<random>`` on that server for
one test and drops it afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

ENV_DATABASE_URL = "KEEL_TEST_DATABASE_URL"
ENV_REQUIRE = "KEEL_REQUIRE_POSTGRES"
SERVER_BINARY_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "keel"
START_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.1


class PostgresStartError(RuntimeError):
    """Server binaries exist but the throwaway cluster could not be started."""


def postgres_required() -> bool:
    return os.environ.get(ENV_REQUIRE, "").strip().lower() in {"1", "true", "yes"}


def _version_key(bindir: Path) -> tuple[int, ...]:
    version = bindir.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def find_server_bindir(pattern: str | None = None) -> Path | None:
    """The newest ``.../bin`` directory holding executable ``initdb`` and ``pg_ctl``, if any."""
    candidates = [
        bindir
        for bindir in (Path(p) for p in sorted(glob.glob(pattern or SERVER_BINARY_GLOB)))
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres"))
    ]
    if not candidates:
        return None
    return max(candidates, key=_version_key)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll_until(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Call ``condition`` until it is true; raise ``TimeoutError`` naming ``what`` after the
    deadline. The short pause between attempts only spaces out the polls."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_s:.0f}s")
        time.sleep(POLL_INTERVAL_S)


def connect_kwargs(url: str) -> dict[str, Any]:
    """psycopg.connect() keyword arguments for a SQLAlchemy URL (no string re-escaping)."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = parsed.translate_connect_args(username="user", database="dbname")
    for key, value in parsed.query.items():
        kwargs[key] = value if isinstance(value, str) else value[-1]
    return kwargs


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` as shorthand for ``postgresql+psycopg://`` (psycopg 3 is the
    driver Keel ships with); reject anything that is not PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(
            f"{ENV_DATABASE_URL} must be a PostgreSQL URL such as "
            f"postgresql+psycopg://user:pw@127.0.0.1:5432/postgres, got backend "
            f"{parsed.get_backend_name()!r}"
        )
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def check_server(url: str, *, timeout_s: int = 10) -> str:
    """Connect once and return the server's ``version()`` (raises on failure)."""
    with psycopg.connect(**connect_kwargs(url), connect_timeout=timeout_s) as conn:
        row = conn.execute("select version()").fetchone()
    assert row is not None
    return str(row[0])


@dataclass
class TempCluster:
    """A PostgreSQL cluster in a temporary directory; see the module docstring."""

    bindir: Path
    root: Path
    port: int
    password: str
    run_as: str | None  # system user that owns and runs the cluster (None: the current user)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socketdir(self) -> Path:
        return self.root / "sock"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            password=self.password,
            host="127.0.0.1",
            port=self.port,
            database="postgres",
        ).render_as_string(hide_password=False)

    def _cmd(self, tool: str, *args: str) -> list[str]:
        argv = [str(self.bindir / tool), *args]
        if self.run_as is not None:
            return [runuser_path(), "-u", self.run_as, "--", *argv]
        return argv

    def _run(self, tool: str, *args: str, timeout_s: float = 120.0) -> None:
        cmd = self._cmd(tool, *args)
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if proc.returncode != 0:
            raise PostgresStartError(
                f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n"
                f"{proc.stdout}{proc.stderr}{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return ""
        return "\n--- server log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def init(self) -> None:
        self.socketdir.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._chown_tree()
        self._run(
            "initdb",
            "--pgdata",
            str(self.datadir),
            "--username",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth-local",
            "trust",
            "--auth-host",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        pwfile.unlink()
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# keel tests: throwaway cluster, loopback only, durability traded for speed\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.socketdir}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
            )

    def start(self, port: int) -> None:
        """Start on ``port`` and return once the server accepts connections."""
        self.port = port
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.datadir),
            "--log",
            str(self.logfile),
            "--wait",
            "--timeout",
            str(int(START_TIMEOUT_S)),
            "-o",
            f"-p {port}",
            timeout_s=START_TIMEOUT_S + 30,
        )
        # pg_ctl --wait already polled until the server reported "ready"; confirm over TCP.
        try:
            poll_until(self.is_ready, timeout_s=START_TIMEOUT_S, what="pg_isready on 127.0.0.1")
        except TimeoutError as exc:
            raise PostgresStartError(f"{exc}{self.log_tail()}") from exc

    def is_ready(self) -> bool:
        proc = subprocess.run(
            [
                str(self.bindir / "pg_isready"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dbname",
                "postgres",
                "--timeout",
                "5",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        return proc.returncode == 0

    def stop(self) -> None:
        if not (self.datadir / "postmaster.pid").exists():
            return
        try:
            self._run("pg_ctl", "stop", "--pgdata", str(self.datadir), "--mode", "fast", "--wait")
        except (PostgresStartError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "stop", "--pgdata", str(self.datadir), "--mode", "immediate")

    def _chown_tree(self) -> None:
        if self.run_as is None:
            return
        for path in (self.root, *self.root.rglob("*")):
            shutil.chown(path, user=self.run_as)


def runuser_path() -> str:
    """``runuser`` lives in sbin, which a root ``PATH`` may lack; "" when it is not installed."""
    found = shutil.which("runuser")
    if found:
        return found
    for candidate in ("/usr/sbin/runuser", "/sbin/runuser"):
        if os.access(candidate, os.X_OK):
            return candidate
    return ""


def _tempdir_for(run_as: str | None) -> Path:
    """A fresh temporary directory that ``run_as`` can use (as root, ``$TMPDIR`` may sit under a
    directory the ``postgres`` user cannot enter; fall back to /tmp then)."""
    for parent in (None, "/tmp"):
        root = Path(tempfile.mkdtemp(prefix="keel-pg-", dir=parent))
        if run_as is None:
            return root
        shutil.chown(root, user=run_as)
        probe = subprocess.run(
            [runuser_path(), "-u", run_as, "--", "test", "-w", str(root), "-a", "-x", str(root)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return root
        shutil.rmtree(root, ignore_errors=True)
    raise PostgresStartError(
        f"the {run_as!r} user cannot use a temporary directory (tried $TMPDIR and /tmp)"
    )


def _system_user_for_server() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresStartError(
            "running as root, and PostgreSQL refuses to run as root, but there is no 'postgres' "
            "system user to run it as (apt-get install postgresql creates one)"
        ) from None
    if not runuser_path():
        raise PostgresStartError("running as root but 'runuser' (util-linux) is not installed")
    return "postgres"


@contextlib.contextmanager
def temp_cluster(bindir: Path, *, attempts: int = 3) -> Iterator[TempCluster]:
    """Create, start, yield, then stop and delete a throwaway cluster."""
    run_as = _system_user_for_server()
    root = _tempdir_for(run_as)
    cluster = TempCluster(
        bindir=bindir, root=root, port=0, password=secrets.token_urlsafe(24), run_as=run_as
    )
    try:
        cluster.init()
        for attempt in range(1, attempts + 1):
            # The free port can be taken between choosing it and binding it; try another one.
            try:
                cluster.start(free_loopback_port())
                break
            except PostgresStartError:
                if attempt == attempts:
                    raise
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _unavailable(reason: str) -> NoReturn:
    """Skip (or, when PostgreSQL is required, fail) the requesting test with ``reason``."""
    if postgres_required():
        pytest.fail(
            f"{reason}, and {ENV_REQUIRE}=1 requires PostgreSQL tests to run", pytrace=False
        )
    pytest.skip(reason)


@contextlib.contextmanager
def session_postgres_url() -> Iterator[str]:
    """The server URL for the whole test session (see the module docstring)."""
    given = os.environ.get(ENV_DATABASE_URL, "").strip()
    if given:
        url = normalize_url(given)
        try:
            check_server(url)
        except psycopg.Error as exc:
            shown = make_url(url).render_as_string(hide_password=True)
            pytest.fail(
                f"{ENV_DATABASE_URL} is set to {shown} but connecting to it failed: {exc}",
                pytrace=False,
            )
        yield url
        return

    bindir = find_server_bindir()
    if bindir is None:
        _unavailable(
            f"no PostgreSQL: {ENV_DATABASE_URL} is unset and no server binaries "
            f"(initdb, pg_ctl) were found in {SERVER_BINARY_GLOB} "
            "(on Debian: apt-get install postgresql)"
        )
    with contextlib.ExitStack() as stack:
        failure = ""
        try:
            cluster = stack.enter_context(temp_cluster(bindir))
        except PostgresStartError as exc:
            failure = f"could not start a throwaway PostgreSQL from {bindir}: {exc}"
        if failure:
            pytest.fail(failure, pytrace=False)
        yield cluster.url


DROP_DEADLINE_S = 60.0


def _drop_database(maintenance: psycopg.Connection[Any], name: str) -> None:
    """Drop ``name``, terminating the connections to it.

    ``WITH (FORCE)`` also has to stop other backends in that database. Under load an autovacuum
    worker can be one of them, and a role that is neither superuser nor in ``pg_signal_backend``
    may not terminate it (``InsufficientPrivilege``); a session that is just closing can also
    still count (``ObjectInUse``). Both pass once that backend is gone, so retry until a
    deadline instead of failing the test's teardown. (.ci/run also grants its role
    ``pg_signal_backend``.)
    """
    ident = sql.Identifier(name)
    deadline = time.monotonic() + DROP_DEADLINE_S
    while True:
        try:
            maintenance.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            return
        except psycopg.errors.SyntaxError:  # servers older than PostgreSQL 13
            maintenance.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if time.monotonic() >= deadline:
                raise
            time.sleep(POLL_INTERVAL_S)  # poll: the other backend ends on its own


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str = "keel_test_") -> Iterator[str]:
    """Create an empty database on the server at ``server_url``, yield its SQLAlchemy URL, and
    drop it afterwards (even if connections to it are still open)."""
    name = f"{prefix}{secrets.token_hex(6)}"
    maintenance_kwargs = {**connect_kwargs(server_url), "dbname": "postgres"}
    with psycopg.connect(**maintenance_kwargs, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**maintenance_kwargs, autocommit=True, connect_timeout=10) as conn:
            _drop_database(conn, name)
