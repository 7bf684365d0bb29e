"""Governance: the four gates, management sign-off and promotion, under the tier's policy.

```
performance -> security -> fairness -> signoff -> production
```

The rules a version lives by (see also ``keel.services.gates.*`` for each gate's own rules):

- **Policy.** The model's risk tier (``Model.risk_tier``, set by the risk assessment) picks the
  policy. Each tier has a default Keel ships (``default_policies/<tier>.yaml``); an admin replaces
  it with `apply_policy`, and every apply is a new version. Until a tier's policy is first used
  or replaced, `policy` reports the default as version 0; the first gate run records it as
  version 1. An *unassessed* model is judged by the unassessed policy, which by default is as
  strict as the high-risk one. A *prohibited* model is never promoted, not even by break-glass.
- **Gates 1-3** run together (`run_gates`, needs write access in the model's team): Keel runs
  the artifact on the version's evaluation data in a separate process (once; gates 1 and 3 share
  the report). An artifact without a clean scan is never loaded: gate 1 and 3 are ERROR with
  "not loaded: failed security scan". Every result is stored with its evidence, the tier and
  policy version, the time, who ran it, and the evidence digest; every run is audited.
- **Stale results.** A stored result only counts while it was judged under the tier's current
  policy version, on the evaluation data attached now, and (for relative thresholds) against
  the version in production now; otherwise the gate is PENDING until the gates are run again.
- **Sign-off.** Approving or rejecting needs the approver role in the model's team or in a team
  the policy asks approvals from, a person (not a service account) and a comment. Whoever
  registered the version cannot approve it (separation of duties). Approvals are accepted only
  once every required gate 1-3 has passed; each approval records the evidence digests it saw,
  and is void as soon as a re-run of those gates produces a different digest. A rejection ends
  the candidacy: the version is archived and can never be promoted; register a new version.
  A retired version takes decisions too, so a rollback to it stays possible after a policy
  change or a risk reassessment voided its approvals.
- **Promotion** (write access in the model's team) sets the ``production`` alias only when every
  required gate passed; otherwise `Conflict` (409) lists each failing or missing gate and what
  would make it pass. The previous production version is retired and recorded for rollback.
  **Break-glass**: an admin may promote despite failing gates with a written justification;
  the promotion is flagged forever (`Promotion.break_glass`) and audited with the blockers it
  overrode. It cannot revive a rejected (archived) version or a prohibited model.
- **Rollback** moves ``production`` back to the version the current one replaced, through the
  same checks (except the comparison against the production version it leaves).

One module per step: `pipeline` (policies and each gate's state), `gate_runs`, `signoff`,
`promotion`, `rollback`, and `queue` (what waits for an approver); `Governance` joins them.
"""

from __future__ import annotations

from keel.services.governance.gate_runs import NOT_LOADED, GateRuns
from keel.services.governance.pipeline import MAX_COMMENT, Listener
from keel.services.governance.promotion import PromotionPath
from keel.services.governance.queue import SignoffQueue
from keel.services.governance.rollback import RollbackPath, RollbackPlan
from keel.services.governance.signoff import SignOff

__all__ = ["MAX_COMMENT", "NOT_LOADED", "Governance", "Listener", "RollbackPlan"]


class Governance(GateRuns, SignOff, PromotionPath, RollbackPath, SignoffQueue):
    """The gates, sign-off, promotion and rollback of model versions."""
