"""What a label-free estimate is: a value, its sampling-error band, and the assumption flags.

The band is the estimate plus or minus `BAND_SIGMAS` standard errors, as NannyML draws its
confidence band: the realized value of a window, once its labels arrive, should fall inside it
unless the estimation's assumptions failed (the flags say which ones might have).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BAND_SIGMAS = 3.0
# A window is flagged when more than this share of its rows lies outside the reference's support.
SUPPORT_SHARE_LIMIT = 0.05
# A band wider than this (half-width, in the metric's units for the 0-1 classification metrics;
# relative to the estimate for the regression errors) is too wide to tell a drop from noise.
USEFUL_HALF_WIDTH = 0.1
USEFUL_RELATIVE_HALF_WIDTH = 0.25


@dataclass(frozen=True)
class Estimate:
    """One metric's estimate over one window."""

    metric: str
    value: float
    sampling_error: float
    lower: float
    upper: float

    @classmethod
    def banded(cls, metric: str, value: float, sampling_error: float, *, bounded: bool) -> Estimate:
        """``value`` with its band; a ``bounded`` metric's band is clipped to ``[0, 1]``."""
        half = BAND_SIGMAS * sampling_error
        lower, upper = value - half, value + half
        if bounded:
            lower, upper = max(0.0, lower), min(1.0, upper)
        else:
            lower = max(0.0, lower)
        return cls(metric, float(value), float(sampling_error), float(lower), float(upper))

    def covers(self, realized: float) -> bool:
        """Whether a realized value lies inside the band."""
        return self.lower <= realized <= self.upper

    @property
    def useful(self) -> bool:
        if not math.isfinite(self.sampling_error):
            return False
        half = BAND_SIGMAS * self.sampling_error
        if self.metric in ("mae", "rmse"):
            return half <= USEFUL_RELATIVE_HALF_WIDTH * max(self.value, 1e-12)
        return half <= USEFUL_HALF_WIDTH


@dataclass(frozen=True)
class AssumptionFlags:
    """Why an estimate may be off, shown with every estimate.

    * ``calibration_not_improved``: the cross-validated check found that isotonic calibration
      did not lower the calibration error, so raw scores were read as probabilities (CBPE);
    * ``outside_support_share``: the share of the window's rows outside the reference's support
      (scores for CBPE, feature ranges and categories for DLE); flagged above
      `SUPPORT_SHARE_LIMIT` as ``outside_support``;
    * ``window_too_small``: some estimate's band is too wide to be useful.
    """

    calibration_not_improved: bool
    outside_support_share: float
    window_too_small: bool

    @property
    def outside_support(self) -> bool:
        return self.outside_support_share > SUPPORT_SHARE_LIMIT

    def names(self) -> list[str]:
        """The raised flags' names."""
        raised = {
            "calibration_not_improved": self.calibration_not_improved,
            "outside_support": self.outside_support,
            "window_too_small": self.window_too_small,
        }
        return [name for name, on in raised.items() if on]


@dataclass(frozen=True)
class EstimationResult:
    """A window's estimates, by metric name, and the flags that qualify all of them."""

    rows: int
    estimates: dict[str, Estimate]
    flags: AssumptionFlags = field(default_factory=lambda: AssumptionFlags(False, 0.0, False))
