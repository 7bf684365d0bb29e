"""Costs: FOCUS bills and Keel's own metering, allocated to models and teams; budgets."""

from keel.services.costs.service import CostService

__all__ = ["CostService"]
