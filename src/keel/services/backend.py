"""Everything the server needs, opened once from `Settings` and closed on shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from keel.config import Settings
from keel.domain.monitoring import Check
from keel.errors import NotReady
from keel.services.alerts import Alerts
from keel.services.audit import AuditTrail
from keel.services.compliance import ComplianceDocuments
from keel.services.costs import CostService
from keel.services.delivery import Delivery, RolloutCanaries
from keel.services.deployments import Deployments
from keel.services.drill_jobs import register_drill_kind
from keel.services.drills import Drills
from keel.services.estimation.check import estimated_performance
from keel.services.estimation.service import ESTIMATION_FIT, Estimation
from keel.services.evaluation import Evaluation
from keel.services.explanation_drift import WindowExplanations
from keel.services.governance import Governance
from keel.services.identity import Identity
from keel.services.incidents import Incidents
from keel.services.job_kinds import register_kinds
from keel.services.jobs import Jobs
from keel.services.maturity import MaturityScoring
from keel.services.mlflow_compat import MlflowRegistry, ModelSources
from keel.services.model_metrics import ModelMetricsSource
from keel.services.monitoring import Monitoring
from keel.services.notifications import Notifications
from keel.services.playbooks import Playbooks
from keel.services.portfolio import PortfolioService
from keel.services.registry import Registry
from keel.services.report import ExecutiveReports
from keel.services.retraining import Retraining
from keel.services.risk import RiskClassification
from keel.services.scanning import ArtifactScanner
from keel.services.slos import Slos
from keel.services.telemetry import Telemetry
from keel.services.telemetry_io import UploadLimits
from keel.services.value import Value
from keel.store import migrate
from keel.store.artifacts import ArtifactStore
from keel.store.audit_checkpoints import CheckpointFile, open_key
from keel.store.sql import SqlRegistryStore, make_engine
from keel.store.sql.alerts import SqlAlertStore
from keel.store.sql.audit import SqlAuditLog, sign_with
from keel.store.sql.compute_usage import SqlComputeUsage
from keel.store.sql.costs import SqlCostStore
from keel.store.sql.delivery import SqlDeliveryStore
from keel.store.sql.deployments import SqlDeploymentStore
from keel.store.sql.drills import SqlDrillStore
from keel.store.sql.estimation import SqlEstimatorStore
from keel.store.sql.evaluation import SqlEvaluationStore
from keel.store.sql.governance import SqlGovernanceStore
from keel.store.sql.identity import SqlIdentityStore
from keel.store.sql.incidents import SqlIncidentStore
from keel.store.sql.jobs import SqlJobStore
from keel.store.sql.mlflow import SqlMlflowStore
from keel.store.sql.model_metrics import SqlModelMetricsStore
from keel.store.sql.monitoring import SqlMonitoringStore
from keel.store.sql.notifications import SqlNotificationStore
from keel.store.sql.playbooks import SqlPlaybookStore
from keel.store.sql.portfolio import SqlPortfolioStore
from keel.store.sql.profiles import SqlTelemetryStore
from keel.store.sql.risk import SqlRiskStore
from keel.store.sql.value import SqlValueStore
from keel.store.telemetry import TelemetryFiles


@dataclass
class Backend:
    settings: Settings
    engine: Engine
    registry: Registry
    identity: Identity
    audit: AuditTrail
    risk: RiskClassification
    evaluation: Evaluation
    governance: Governance
    compliance: ComplianceDocuments
    telemetry: Telemetry
    monitoring: Monitoring
    incidents: Incidents
    alerts: Alerts
    notifications: Notifications
    slos: Slos
    retraining: Retraining
    playbooks: Playbooks
    costs: CostService
    model_metrics: ModelMetricsSource
    value: Value
    delivery: Delivery
    maturity: MaturityScoring = field(init=False)
    reports: ExecutiveReports = field(init=False)
    portfolio: PortfolioService = field(init=False)
    mlflow: MlflowRegistry
    jobs: Jobs
    deployments: Deployments
    estimation: Estimation
    drills: Drills = field(init=False)

    @classmethod
    def open(cls, settings: Settings) -> Backend:
        engine = make_engine(settings.database_url)
        # The audit key is a file, never a row: made on the first start at the default place;
        # an explicit KEEL_AUDIT_KEY_FILE must already exist.
        audit_key = open_key(settings.audit_key_path, create=settings.audit_key_file is None)
        sign_with(engine, audit_key)
        artifacts = ArtifactStore(settings.artifact_url, settings.artifact_storage_options)
        registry_store = SqlRegistryStore(engine)
        evaluation_store = SqlEvaluationStore(engine)
        registry = Registry(
            registry_store,
            artifacts,
            max_artifact_bytes=settings.max_artifact_bytes,
            scanner=ArtifactScanner(evaluation_store, artifacts),
        )
        upload_limits = UploadLimits(
            settings.max_upload_rows, settings.max_upload_decompressed_bytes
        )
        compute_usage = SqlComputeUsage(engine)
        evaluation = Evaluation(
            evaluation_store,
            registry,
            max_dataset_bytes=settings.max_artifact_bytes,
            upload_limits=upload_limits,
            compute_usage=compute_usage,
        )
        risk = RiskClassification(SqlRiskStore(engine), registry_store)
        governance = Governance(SqlGovernanceStore(engine), registry, evaluation)
        incidents = Incidents(SqlIncidentStore(engine), registry)
        alerts = Alerts(SqlAlertStore(engine), registry, incidents)
        telemetry = Telemetry(
            SqlTelemetryStore(engine),
            TelemetryFiles(settings.telemetry_location, settings.telemetry_storage_options),
            registry,
            upload_limits=upload_limits,
        )
        # Monitors create their default alert rules; each window's points are evaluated.
        monitoring = Monitoring(
            SqlMonitoringStore(engine),
            registry,
            telemetry,
            label_horizon=timedelta(days=settings.label_horizon_days),
            explanations=WindowExplanations(governance.store, evaluation),
        )
        telemetry.on_labels(monitoring.labels_arrived)
        # Label-free estimates: fitted by a job when a reference carries predictions and labels.
        estimation = Estimation(SqlEstimatorStore(engine), registry, telemetry)
        monitoring.add_check(Check.ESTIMATED_PERFORMANCE, estimated_performance(estimation))
        monitoring.on_created(alerts.on_monitor_created)
        monitoring.on_deleted(alerts.on_monitor_deleted)
        monitoring.on_points(alerts.on_points)
        notification_store = SqlNotificationStore(engine)
        notifications = Notifications(
            notification_store, max_attempts=settings.webhook_max_attempts
        )
        playbook_store = SqlPlaybookStore(engine)
        retraining = Retraining(
            playbook_store,
            registry,
            governance,
            telemetry,
            settings.data_dir / "retraining",
            notifications,
        )
        costs = CostService(
            SqlCostStore(engine),
            telemetry.files,
            incidents=incidents,
            notifications=notifications,
            compute_usage=compute_usage,
        )
        deployments = Deployments(
            SqlDeploymentStore(engine), registry, governance, telemetry, incidents, evaluation
        )
        backend = cls(
            settings=settings,
            engine=engine,
            registry=registry,
            identity=Identity(SqlIdentityStore(engine)),
            audit=AuditTrail(
                SqlAuditLog(engine), audit_key, CheckpointFile(settings.audit_checkpoint_path)
            ),
            risk=risk,
            evaluation=evaluation,
            governance=governance,
            compliance=ComplianceDocuments(registry, risk, governance, evaluation),
            telemetry=telemetry,
            monitoring=monitoring,
            incidents=incidents,
            alerts=alerts,
            notifications=notifications,
            slos=Slos(
                notification_store,
                registry,
                telemetry,
                incidents,
                budgets=(model_metrics := SqlModelMetricsStore(engine)),
            ),
            retraining=retraining,
            # Subscribes to incidents: matching playbooks run when an incident is triggered.
            playbooks=Playbooks(
                playbook_store,
                registry,
                incidents,
                governance,
                retraining,
                notifications,
                rollouts=deployments,
            ),
            costs=costs,
            model_metrics=ModelMetricsSource(model_metrics, telemetry),
            value=Value(SqlValueStore(engine), registry, telemetry, costs=costs),
            # Aborted rollouts that reached users count as failed deployments.
            delivery=Delivery(
                SqlDeliveryStore(engine), registry, RolloutCanaries(deployments, registry)
            ),
            mlflow=MlflowRegistry(
                SqlMlflowStore(engine),
                registry,
                governance,
                ModelSources(
                    settings.mlflow_tracking_uri,
                    max_bytes=settings.max_artifact_bytes,
                    storage_options={"client_kwargs": {"endpoint_url": settings.s3_endpoint_url}}
                    if settings.s3_endpoint_url
                    else {},
                    local_roots=settings.mlflow_local_roots,
                ),
                settings.data_dir / "mlflow-sources",
            ),
            jobs=Jobs(
                SqlJobStore(engine),
                lease_seconds=settings.job_lease_seconds,
                max_attempts=settings.job_max_attempts,
            ),
            deployments=deployments,
            estimation=estimation,
        )
        backend.maturity = MaturityScoring(
            SqlValueStore(engine),
            registry,
            governance,
            backend.delivery,
            monitoring,
            alerts,
            backend.playbooks,
            retraining,
            incidents,
            telemetry,
        )
        backend.reports = ExecutiveReports(
            registry,
            incidents,
            backend.value,
            backend.delivery,
            backend.maturity,
            backend.compliance,
            costs=costs,
        )
        backend.portfolio = PortfolioService(
            SqlPortfolioStore(engine), costs, backend.value, backend.delivery, backend.maturity
        )
        register_kinds(backend.jobs, governance, retraining, monitoring, backend.compliance)
        # Drills rehearse incidents on made-up telemetry, apart from real data (a job kind).
        backend.drills = Drills(
            SqlDrillStore(engine),
            registry,
            monitoring,
            alerts,
            incidents,
            backend.playbooks,
            notifications,
        )
        backend.maturity.drills = backend.drills
        register_drill_kind(backend.jobs, backend.drills)
        backend.jobs.handle(ESTIMATION_FIT, estimation.fit_job())
        # Every incident change queues its incident.* webhooks (after the change commits).
        backend.incidents.add_listener(notifications.incident_listener)
        # ...and so does every gate run, sign-off decision, promotion and rollback.
        backend.governance.add_listener(notifications.emit)
        # ...and every signed audit checkpoint: webhook receivers become outside witnesses.
        backend.audit.add_listener(notifications.emit)
        # ...and every deployment change (deployment.started, .advanced, .promoted, .aborted...).
        backend.deployments.add_listener(notifications.emit)
        return backend

    def migrate(self) -> None:
        """Bring the metadata database to the newest schema (idempotent)."""
        migrate.upgrade(self.engine)

    def check_ready(self) -> dict[str, str]:
        """Raise `NotReady` naming the first dependency that cannot serve requests."""
        current = migrate.current_revision(self.engine)
        head = migrate.head_revision()
        if current != head:
            raise NotReady(
                f"The metadata database is at schema {current or 'empty'}, this Keel needs "
                f"{head}. Run `keel db upgrade`.",
                {"component": "metadata", "current": current, "required": head},
            )
        self.registry.store.ping()
        self.registry.artifacts.check()
        self.telemetry.files.check()
        return {"metadata": "ok", "artifacts": "ok"}

    def close(self) -> None:
        self.engine.dispose()
