"""The ``estimated_performance`` monitor check: per window, each metric's estimate with its
band, the realized value and the estimation error once labels arrive, and the assumption flags.

Points (``column`` names the metric): ``estimate`` (judged against the monitor's
``thresholds.performance`` limit of that metric, so alert rules fire on an estimated drop before
labels come), ``lower``, ``upper``, ``sampling_error``, and, once labelled, ``realized`` and
``estimation_error`` (estimate minus realized). Window-wide: ``rows``, ``labelled_rows``,
``outside_support_share``, ``calibration_not_improved`` and ``window_too_small`` (1 when raised;
a raised flag is a warning, never an alert).
"""

from __future__ import annotations

from collections.abc import Callable

from keel.domain.monitoring import Check, MetricPoint, Status, performance_direction
from keel.services.estimation.service import Estimation
from keel.services.monitoring_checks import CheckContext

CHECK = Check.ESTIMATED_PERFORMANCE


def estimated_performance(estimation: Estimation) -> Callable[[CheckContext], list[MetricPoint]]:
    def run(ctx: CheckContext) -> list[MetricPoint]:
        found = estimation.window_estimate(
            ctx.model, ctx.version, ctx.reference_version, ctx.start, ctx.end
        )
        limits = ctx.thresholds.performance
        points: list[MetricPoint] = []
        for name, estimate in found.result.estimates.items():
            points.append(
                ctx.limited(
                    CHECK,
                    name,
                    "estimate",
                    estimate.value,
                    limits.get(name),
                    performance_direction(name),
                )
            )
            for metric, value in (
                ("lower", estimate.lower),
                ("upper", estimate.upper),
                ("sampling_error", estimate.sampling_error),
            ):
                points.append(ctx.point(CHECK, name, metric, value, None, Status.OK))
            realized = found.realized.get(name)
            if realized is not None:
                error = found.estimation_error(name)
                points.append(ctx.point(CHECK, name, "realized", realized, None, Status.OK))
                points.append(ctx.point(CHECK, name, "estimation_error", error, None, Status.OK))
        flags = found.result.flags
        points += [
            ctx.point(CHECK, None, "rows", found.result.rows, None, Status.OK),
            ctx.point(CHECK, None, "labelled_rows", found.labelled_rows, None, Status.OK),
            ctx.point(
                CHECK,
                None,
                "outside_support_share",
                flags.outside_support_share,
                None,
                Status.WARNING if flags.outside_support else Status.OK,
            ),
        ]
        for flag in ("calibration_not_improved", "window_too_small"):
            raised = bool(getattr(flags, flag))
            status = Status.WARNING if raised else Status.OK
            points.append(ctx.point(CHECK, None, flag, float(raised), None, status))
        return points

    return run
