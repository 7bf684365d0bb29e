"""Kubernetes manifests for a model's deployment, for teams that serve on their own cluster.

- **kserve**: a KServe ``InferenceService`` (``serving.kserve.io/v1beta1``). A canary in progress
  becomes ``canaryTrafficPercent`` on the predictor pointing at the candidate's artifact (KServe
  keeps the previous revision for the rest of the traffic); otherwise the production version.
- **argo-rollouts**: an Argo ``Rollout`` (``argoproj.io/v1alpha1``) whose canary steps are the
  plan's steps (``setWeight``, ``pause``, ``analysis``), and an ``AnalysisTemplate`` whose
  Prometheus queries read the metrics Keel's gateway exports (``keel_predictions_total``,
  ``keel_prediction_errors_total``, ``keel_prediction_latency_seconds``) by model and version,
  with the plan's Argo limits. Checks that need Keel's telemetry (prediction drift, live
  performance) have no Prometheus query; they are listed in an annotation, still judged by Keel.

The manifests are plain YAML; nothing here talks to a cluster.
"""

from __future__ import annotations

from typing import Any

import yaml

from keel.domain.deployments import Check, Deployment, Metric, Strategy
from keel.domain.registry import ArtifactFlavor
from keel.errors import InvalidInput
from keel.services.registry import Registry

FORMATS = ("kserve", "argo-rollouts")
# KServe's model formats for the artifacts Keel serves.
_KSERVE_FORMAT = {
    ArtifactFlavor.SKLEARN: "sklearn",
    ArtifactFlavor.JOBLIB: "sklearn",
    ArtifactFlavor.PICKLE: "sklearn",
    ArtifactFlavor.SKOPS: "sklearn",
    ArtifactFlavor.ONNX: "onnx",
}
DEFAULT_PROMETHEUS = "http://prometheus.monitoring.svc:9090"
DEFAULT_IMAGE = "ghcr.io/keel-mlops/keel:latest"


def _k8s_name(model: str) -> str:
    return model.lower().replace("_", "-").replace(".", "-")[:63].strip("-") or "model"


def _weights_version(deployment: Deployment, production: int | None) -> tuple[int, int | None]:
    """(the version the manifest serves, the canary percent or None)."""
    if deployment.state.active and deployment.strategy == Strategy.CANARY:
        return deployment.candidate, round(deployment.weight * 100)
    served = production if production is not None else deployment.candidate
    return served, None


def kserve(
    registry: Registry, deployment: Deployment, production: int | None
) -> list[dict[str, Any]]:
    version, canary_percent = _weights_version(deployment, production)
    found = registry.get_version(deployment.model, version)
    model_format = _KSERVE_FORMAT.get(found.artifact.flavor, str(found.artifact.flavor))
    predictor: dict[str, Any] = {
        "model": {
            "modelFormat": {"name": model_format},
            "storageUri": registry.artifacts.address(found.artifact.sha256),
        }
    }
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    return [
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": _k8s_name(deployment.model),
                "annotations": {
                    "keel.dev/model": deployment.model,
                    "keel.dev/version": str(version),
                    "keel.dev/deployment": str(deployment.id),
                },
            },
            "spec": {"predictor": predictor},
        }
    ]


def _queries(model: str, version: int) -> dict[str, str]:
    selector = f'model="{model}",version="{version}"'
    window = "[5m]"
    return {
        str(Metric.ERROR_RATE): (
            f"sum(rate(keel_prediction_errors_total{{{selector}}}{window})) / "
            f"sum(rate(keel_predictions_total{{{selector}}}{window}))"
        ),
        # Keel's checks are in milliseconds; the histogram is in seconds.
        str(Metric.LATENCY_P99_MS): (
            "1000 * histogram_quantile(0.99, sum by (le) "
            f"(rate(keel_prediction_latency_seconds_bucket{{{selector}}}{window})))"
        ),
    }


def _metric(
    check: Check, index: int, deployment: Deployment, prometheus: str
) -> dict[str, Any] | None:
    if check.metric not in (Metric.ERROR_RATE, Metric.LATENCY_P99_MS):
        return None
    assert deployment.stable is not None
    canary = _queries(deployment.model, deployment.candidate)[str(check.metric)]
    if check.relative:
        stable = _queries(deployment.model, deployment.stable)[str(check.metric)]
        query = f"({canary}) / ({stable})"
        condition = f"result[0] <= {1 + check.threshold:g}"
    else:
        query = canary
        condition = f"result[0] <= {check.threshold:g}"
    limits = deployment.plan.analysis
    return {
        "name": f"{str(check.metric).replace('_', '-')}-{index}",
        "interval": f"{limits.interval_s:g}s",
        "failureLimit": limits.failure_limit,
        "inconclusiveLimit": limits.inconclusive_limit,
        "consecutiveErrorLimit": limits.consecutive_error_limit,
        "successCondition": condition,
        "failureCondition": condition.replace("<=", ">"),
        "provider": {"prometheus": {"address": prometheus, "query": query}},
    }


def argo_rollouts(
    deployment: Deployment,
    production: int | None,
    *,
    prometheus: str = DEFAULT_PROMETHEUS,
    image: str = DEFAULT_IMAGE,
) -> list[dict[str, Any]]:
    if deployment.strategy != Strategy.CANARY or deployment.stable is None:
        raise InvalidInput(
            f"Deployment {deployment.id} of {deployment.model} is {deployment.strategy}; an Argo "
            "Rollout with analysis is exported for a canary. Use --format kserve for the others.",
            {"field": "format"},
        )
    name = _k8s_name(deployment.model)
    steps: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    keel_only: list[str] = []
    for index, step in enumerate(deployment.plan.steps):
        steps.append({"setWeight": round(step.weight * 100)})
        if step.min_duration_s is not None:
            steps.append({"pause": {"duration": f"{step.min_duration_s:g}s"}})
        judged = [_metric(c, index, deployment, prometheus) for c in step.checks]
        keel_only += [
            f"step {index + 1}: {c.metric}"
            for c, m in zip(step.checks, judged, strict=True)
            if m is None
        ]
        present = [m for m in judged if m is not None]
        if present:
            metrics.extend(present)
            steps.append(
                {
                    "analysis": {
                        "templates": [{"templateName": f"{name}-keel"}],
                        "args": [{"name": "step", "value": str(index + 1)}],
                    }
                }
            )
    labels = {"app.kubernetes.io/name": name, "keel.dev/model": _k8s_name(deployment.model)}
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": name,
            "annotations": {
                "keel.dev/deployment": str(deployment.id),
                "keel.dev/stable-version": str(deployment.stable),
                "keel.dev/canary-version": str(deployment.candidate),
                "keel.dev/checks-judged-by-keel-only": ", ".join(keel_only) or "none",
            },
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "keel-serve",
                            "image": image,
                            "args": ["keel", "serve"],
                            "env": [
                                {"name": "KEEL_SERVE_MODEL", "value": deployment.model},
                                {"name": "KEEL_SERVE_VERSION", "value": str(deployment.candidate)},
                            ],
                            "ports": [{"containerPort": 8000, "name": "http"}],
                        }
                    ]
                },
            },
            "strategy": {"canary": {"steps": steps}},
        },
    }
    template = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": f"{name}-keel"},
        "spec": {"args": [{"name": "step"}], "metrics": metrics},
    }
    return [rollout, template] if metrics else [rollout]


def export(registry: Registry, deployment: Deployment, production: int | None, fmt: str) -> str:
    """The manifests as one multi-document YAML text."""
    if fmt == "kserve":
        documents = kserve(registry, deployment, production)
    elif fmt == "argo-rollouts":
        documents = argo_rollouts(deployment, production)
    else:
        raise InvalidInput(
            f"The format {fmt!r} is not one Keel exports. Use one of: {', '.join(FORMATS)}.",
            {"field": "format"},
        )
    return yaml.safe_dump_all(documents, sort_keys=False)
