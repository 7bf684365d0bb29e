"""A small governed portfolio for the work pages (approvals, incidents, deployments, audit),
built through the services, with one signed-in browser-like client per role."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from starlette.testclient import TestClient

from keel.domain.incidents import Severity
from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.domain.registry import Model, VersionDraft
from keel.services.backend import Backend
from keel.web.session import COOKIE

ROOT = Principal("admin", grants=(Grant(Role.ADMIN),))
# Only sign-off is required: a version becomes a candidate when its gates run, then waits for
# one approval.
SIGNOFF_ONLY = "tier: unassessed\nchecks:\n  signoff:\n    approvals: 1\n"
ROLES = {
    "viewer": ("vera", Role.VIEWER),
    "contributor": ("cara", Role.CONTRIBUTOR),
    "approver": ("april", Role.APPROVER),
    "admin": ("ada", Role.ADMIN),
}
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@dataclass
class Portfolio:
    backend: Backend
    tokens: dict[str, str] = field(default_factory=dict)
    uploads: int = 0

    def person(self, role: str) -> Principal:
        name, granted = ROLES[role]
        return Principal(name, grants=(Grant(granted, None if role == "admin" else "risk"),))

    def model(self, name: str) -> str:
        self.backend.registry.create_model(ROOT, Model(name=name, team="risk", owner="ana"))
        return name

    def register(self, by: str = "contributor", model: str = "churn") -> int:
        self.uploads += 1
        version = self.backend.registry.register_version(
            self.person(by),
            model,
            io.BytesIO(f"model bytes {self.uploads}".encode()),
            "m.bin",
            VersionDraft(metrics={"roc_auc": 0.81}),
        )
        return version.version

    def candidate(self, model: str = "churn") -> int:
        """A version cara registered whose gates ran: it waits for one approval."""
        version = self.register(model=model)
        self.backend.governance.run_gates(ROOT, model, version)
        return version

    def approved(self, model: str = "churn") -> int:
        version = self.candidate(model)
        self.backend.governance.approve(ROOT, model, version, "fine")
        return version

    def incident(self, title: str = "Drift on income") -> int:
        made, _ = self.backend.incidents.trigger(
            ROOT,
            key=f"drift-{title}",
            model="churn",
            version=None,
            title=title,
            severity=Severity.P2,
        )
        return made.id

    def rollout(self, model: str = "churn") -> int:
        """A canary of a new version in progress over an approved production version."""
        if self.backend.governance.production_version(model) is None:
            self.backend.governance.promote(ROOT, model, self.approved(model))
        found = self.backend.deployments.deploy(ROOT, model, self.approved(model), "canary")
        return found.id

    def audit_head(self) -> int:
        return self.backend.audit.log.head()[0]


def build(backend: Backend) -> Portfolio:
    identity, registry = backend.identity, backend.registry
    admin_token = identity.bootstrap_admin()
    assert admin_token is not None
    registry.create_team(ROOT, "risk")
    registry.create_model(ROOT, Model(name="churn", team="risk", owner="ana"))
    backend.governance.apply_policy(ROOT, SIGNOFF_ONLY)
    world = Portfolio(backend)
    for role, (name, granted) in ROLES.items():
        identity.store.create_principal(name, PrincipalKind.USER, "admin")
        identity.store.grant(name, granted, None if role == "admin" else "risk", "admin")
        token, _ = identity.create_token(ROOT, principal=name, name="web")
        world.tokens[role] = token
    return world


def signed_in(client: TestClient, token: str) -> TestClient:
    """``client`` with the session cookie of ``token``, as the sign-in form leaves it."""
    client.cookies.clear()
    response = client.post("/login", data={"token": token})
    assert response.status_code == 303, response.text
    assert client.cookies.get(COOKIE) == token
    return client


def csrf_of(html: str) -> str:
    """The form token a page carries (every form of a page carries the same)."""
    found = _CSRF.search(html)
    assert found, "the page carries no form token"
    return found.group(1)
