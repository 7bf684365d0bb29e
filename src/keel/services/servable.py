"""Which versions the gateway may load, and what their workers need.

A version is loaded only when its security gate passed: the latest result of the security gate
under the policy in force is ``passed``. When the model's risk tier's policy does not ask for a
security gate, the gate's first evidence still has to hold: the artifact's static scan at upload
found it safe. Anything else (no scan, an unsafe scan, a failed or pending gate, a flavor Keel
cannot load) is refused before a byte of the artifact reaches a worker.
"""

from __future__ import annotations

from pathlib import Path

from keel.domain.governance import Gate, GateOutcome
from keel.domain.registry import ArtifactFlavor, ModelVersion
from keel.domain.signature import Signature
from keel.services.evaluation import EVALUABLE_FLAVORS, Evaluation
from keel.services.governance import Governance
from keel.services.model_workers import WorkerSpec
from keel.services.registry import Registry


class ServableVersions:
    """`keel.services.model_workers.Servable` over the registry and governance."""

    def __init__(self, registry: Registry, governance: Governance, evaluation: Evaluation) -> None:
        self.registry = registry
        self.governance = governance
        self.evaluation = evaluation
        self._versions: dict[tuple[str, int], ModelVersion] = {}

    def version(self, model: str, version: int) -> ModelVersion:
        """The registered version (versions never change once registered, so it is cached)."""
        key = (model, version)
        found = self._versions.get(key)
        if found is None:
            found = self._versions[key] = self.registry.get_version(model, version)
        return found

    def signature(self, model: str, version: int) -> Signature:
        return self.version(model, version).signature

    def servable_problem(self, model: str, version: int) -> str | None:
        """Why this version may not be loaded, or None when it may."""
        found = self.version(model, version)
        flavor = found.artifact.flavor
        if flavor not in EVALUABLE_FLAVORS or flavor == ArtifactFlavor.OTHER:
            return f"Keel cannot serve artifacts of flavor {flavor}"
        status = self.governance.status(model, version)
        security = next(state for state in status.gates if state.gate == Gate.SECURITY)
        if security.required:
            if security.outcome != GateOutcome.PASSED:
                return (
                    f"its security gate is {security.outcome}, and only a version whose "
                    f"security gate passed is loaded ({security.to_pass or 'run the gates'})"
                )
            return None
        scan = self.evaluation.scan_report(found.artifact.sha256)
        if scan is None or not scan.safe:
            return "its artifact's security scan did not find it safe, so it is never loaded"
        return None

    def worker_spec(self, model: str, version: int) -> WorkerSpec:
        found = self.version(model, version)
        return WorkerSpec(
            model=model,
            version=version,
            flavor=str(found.artifact.flavor),
            sha256=found.artifact.sha256,
            features=tuple(c.name for c in found.signature.features),
        )

    def copy_artifact(self, sha256: str, target: Path) -> None:
        with target.open("wb") as out:
            for chunk in self.registry.artifacts.iter_verified(sha256):
                out.write(chunk)
