"""A registering process killed with SIGKILL loses no acknowledged version and leaves no
version whose artifact is missing or corrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from keel.config import Settings
from keel.services.backend import Backend

WRITER = textwrap.dedent(
    """
    import io, os, sys
    from keel.config import Settings
    from keel.domain.permissions import Grant, Principal, Role
    from keel.domain.registry import Model, VersionDraft
    from keel.services.backend import Backend

    backend = Backend.open(Settings.load(data_dir=sys.argv[1], env={}))
    backend.migrate()
    registry = backend.registry
    ana = Principal("ana", grants=(Grant(Role.ADMIN),))
    registry.create_team(ana, "risk")
    registry.create_model(ana, Model(name="churn", team="risk", owner="ana"))
    n = 0
    while True:
        n += 1
        payload = os.urandom(256 * 1024)  # big enough that some kills land mid-write
        version = registry.register_version(
            ana, "churn", io.BytesIO(payload), "m.bin", VersionDraft()
        )
        print(f"acknowledged {version.version} {version.artifact.sha256}", flush=True)
    """
)


def test_sigkill_mid_registration_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "keel"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    acknowledged: dict[int, str] = {}
    for line in process.stdout:
        _, acked, digest = line.split()
        acknowledged[int(acked)] = digest
        if len(acknowledged) >= 25:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    backend = Backend.open(Settings.load(data_dir=data_dir, env={}))
    registry = backend.registry
    versions = {v.version: v for v in registry.list_versions("churn", limit=500).items}
    for number, digest in acknowledged.items():
        assert versions[number].artifact.sha256 == digest
    assert sorted(versions) == list(range(1, len(versions) + 1))
    assert registry.get_model("churn").latest_version == max(versions)
    for version in versions.values():
        with registry.artifacts.open_verified(version.artifact.sha256) as verified:
            assert len(verified.read()) == version.artifact.size
    backend.close()
