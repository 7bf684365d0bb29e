"""Gate 2, vulnerability & security posture: scan, hash, size and a pinned environment.

Rules:
- The artifact's static scan (made at upload, before anything could load it) must exist and be
  safe; its findings are the evidence.
- The stored bytes must still hash to the address recorded at registration (re-verified on
  every run, so a tampered artifact fails the gate).
- What loading the artifact does must be known: skops (every type on Keel's trusted list) and ONNX
  load without running code; pickle flavors run code when loaded, so only inside the model
  sandbox; anything else (a PyTorch zip, unknown bytes) was not scanned and fails.
- The artifact must not exceed ``max_artifact_mb``.
- With ``require_pinned_environment``, the version must record its packages, each with an exact
  version (``1.5.2`` or ``==1.5.2``; not ``>=1.5``, ``~=1.5``, ``1.*``, ``latest`` or empty).
"""

from __future__ import annotations

import re

from keel.domain.evaluation import ScanReport
from keel.domain.model_formats import CODE_FREE_FLAVORS, PICKLE_FLAVORS, loading_note
from keel.domain.policy import SecurityPolicy
from keel.domain.registry import ModelVersion
from keel.services.gates import Check, Verdict, from_checks
from keel.services.sandbox import mechanism

_EXACT = re.compile(r"^(===?)?\s*[0-9][0-9A-Za-z.+!_-]*$")


def pinned(spec: str) -> bool:
    """Whether a package's recorded version names exactly one release.

    >>> [pinned(v) for v in ("1.5.2", "==2.0", "2.0.0rc1", ">=1.0", "1.*", "latest", "")]
    [True, True, True, False, False, False, False]
    """
    return bool(_EXACT.match(spec.strip())) and "*" not in spec


def _scan(scan: ScanReport | None, sha256: str) -> Check:
    if scan is None:
        return Check(
            "security scan",
            False,
            f"artifact {sha256[:12]} has no security scan on record; register the "
            "artifact again so Keel scans it at upload",
            {"scan": None},
        )
    values = {
        "scan": {
            "scanner": scan.scanner,
            "scanner_version": scan.scanner_version,
            "safe": scan.safe,
            "scanned_at": scan.scanned_at.isoformat(),
            "findings": [{"severity": f.severity, "message": f.message} for f in scan.findings],
        }
    }
    if scan.safe:
        return Check("security scan", True, f"{scan.scanner} found nothing unsafe", values)
    worst = "; ".join(f"{f.severity}: {f.message}" for f in scan.findings[:3]) or "unsafe"
    return Check(
        "security scan",
        False,
        f"{scan.scanner} found unsafe deserialisation in the artifact ({worst}); "
        "retrain and save the model without custom code in its pickle (or as ONNX), "
        "then register a new version",
        values,
    )


def _loading(version: ModelVersion, problem: str | None) -> Check:
    flavor = version.artifact.flavor
    note = loading_note(flavor)
    values = {"flavor": str(flavor), "loading": note}
    if flavor in PICKLE_FLAVORS:
        values["sandbox"] = mechanism()
        return Check("loading", True, f"{flavor}: {note} ({mechanism()})", values)
    if flavor in CODE_FREE_FLAVORS and problem is None:
        return Check("loading", True, f"{flavor}: {note}", values)
    if problem is not None:
        return Check("loading", False, problem, values)
    return Check(
        "loading",
        False,
        f"the artifact is neither skops, ONNX nor a pickle Keel scanned ({note}); save the "
        "model with skops (scikit-learn) or as ONNX and register a new version",
        values,
    )


def judge(
    policy: SecurityPolicy,
    *,
    version: ModelVersion,
    scan: ScanReport | None,
    hash_problem: str | None,
    loading_problem: str | None = None,
) -> Verdict:
    """The security gate's verdict; ``hash_problem`` is why re-verification failed, or None;
    ``loading_problem`` why a code-free format would not load safely (untrusted skops types)."""
    artifact = version.artifact
    checks = [_scan(scan, artifact.sha256), _loading(version, loading_problem)]
    checks.append(
        Check(
            "hash re-verification",
            hash_problem is None,
            "the stored artifact still hashes to its registered SHA-256"
            if hash_problem is None
            else f"{hash_problem} Restore the artifact from a trusted copy or register anew",
            {"sha256": artifact.sha256},
        )
    )
    limit = policy.max_artifact_bytes
    if limit is not None:
        checks.append(
            Check(
                "artifact size",
                artifact.size <= limit,
                f"the artifact is {artifact.size} bytes; the policy allows at most "
                f"{policy.max_artifact_mb} MB ({limit} bytes)",
                {"size": artifact.size, "max_bytes": limit},
            )
        )
    if policy.require_pinned_environment:
        packages = version.environment.packages
        loose = sorted(f"{name} {spec!r}" for name, spec in packages.items() if not pinned(spec))
        if not packages:
            detail = (
                "the version records no environment packages; register it with its "
                "environment (the SDK records the running one) pinned to exact versions"
            )
        elif loose:
            detail = (
                f"{len(loose)} packages are not pinned to an exact version "
                f"({', '.join(loose[:5])}); record exact versions such as 1.5.2"
            )
        else:
            detail = f"all {len(packages)} packages are pinned to exact versions"
        checks.append(
            Check(
                "pinned environment",
                bool(packages) and not loose,
                detail,
                {
                    "packages": len(packages),
                    "unpinned": loose,
                    "python_version": version.environment.python_version,
                },
            )
        )
    return from_checks(
        checks,
        passed="scan clean, hash verified, limits met",
        details={
            "artifact": {
                "sha256": artifact.sha256,
                "size": artifact.size,
                "flavor": str(artifact.flavor),
            }
        },
    )
