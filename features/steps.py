"""Typed cleaning steps for :func:`features.filters.clean` (pydantic, ``extra="forbid"``).

A cleaning recipe is a list of steps, each one model below, told apart by ``step``::

    steps = [ConfidenceMask(threshold=0.5), RemoveJumps(max_speed_mm_s=1000),
             Interpolate(max_gap_s=0.5), SavGol(window_s=0.2, order=2)]
    clean_ds = features.filters.clean(ds, steps)

The same steps are written in protocol YAML (``- {step: confidence, threshold: 0.5}``) and
validated there by :data:`CleanStep`; the older protocol keys (``p_cutoff``,
``polyorder``) are accepted as aliases. Speeds are in mm/s (``max_speed_mm_s``, converted
with the pose's ``px_per_mm``); ``max_speed_px_s`` is accepted for uncalibrated pose.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ConfidenceMask", "RemoveJumps", "Interpolate", "Median", "SavGol", "Kalman", "CleanStep",
    "standard_steps",
]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ConfidenceMask(_Step):
    """Position set to NaN where confidence < ``threshold`` (NaN confidence is kept)."""

    step: Literal["confidence"] = "confidence"
    threshold: float = Field(ge=0, le=1, validation_alias=AliasChoices("threshold", "p_cutoff"))


class RemoveJumps(_Step):
    """Samples farther from the local median than the body can move are removed.

    Give exactly one of ``max_speed_mm_s`` (needs ``px_per_mm`` on the pose) or
    ``max_speed_px_s``.
    """

    step: Literal["jumps"] = "jumps"
    max_speed_mm_s: float | None = Field(default=None, gt=0)
    max_speed_px_s: float | None = Field(default=None, gt=0)
    window_s: float = Field(default=0.2, gt=0)

    @model_validator(mode="after")
    def _one_speed(self) -> RemoveJumps:
        if (self.max_speed_mm_s is None) == (self.max_speed_px_s is None):
            raise ValueError("give exactly one of max_speed_mm_s or max_speed_px_s")
        return self


class Interpolate(_Step):
    """Linear interpolation of gaps up to ``max_gap_s`` (``None``: every interior gap)."""

    step: Literal["interpolate"] = "interpolate"
    max_gap_s: float | None = Field(default=0.5, ge=0)


class Median(_Step):
    """Centred running median over ``window_s`` (NaN-aware)."""

    step: Literal["median"] = "median"
    window_s: float = Field(gt=0)


class SavGol(_Step):
    """Savitzky-Golay smoothing over ``window_s`` with polynomial ``order`` (NaN-aware)."""

    step: Literal["savgol"] = "savgol"
    window_s: float = Field(gt=0)
    order: int = Field(default=2, ge=0, validation_alias=AliasChoices("order", "polyorder"))


class Kalman(_Step):
    """Kalman filter + RTS smoother with confidence-weighted measurements
    (:func:`features.filters.filter_kalman`)."""

    step: Literal["kalman"] = "kalman"
    model: Literal["constant_velocity", "constant_acceleration"] = "constant_velocity"
    measurement_noise_px: float = Field(default=2.0, gt=0)
    process_noise: float | None = Field(default=None, gt=0)
    min_confidence: float = Field(default=0.2, ge=0, le=1)
    max_gap_s: float | None = Field(default=None, gt=0)
    smooth: bool = True


CleanStep = Annotated[
    ConfidenceMask | RemoveJumps | Interpolate | Median | SavGol | Kalman,
    Field(discriminator="step"),
]


def standard_steps(
    *,
    threshold: float = 0.6,
    max_gap_s: float | None = 0.2,
    smooth: Literal["savgol", "median", "kalman", "none"] = "savgol",
    window_s: float = 0.2,
    max_speed_mm_s: float | None = None,
    max_speed_px_s: float | None = None,
) -> list[ConfidenceMask | RemoveJumps | Interpolate | Median | SavGol | Kalman]:
    """The usual recipe: confidence mask, optional jump removal, gap filling, smoothing.

    With ``smooth="kalman"`` the Kalman model itself skips samples below ``threshold``
    (``min_confidence``) and bridges gaps up to ``max_gap_s``, so no mask or interpolation
    step is added; jump removal, when asked for, still runs first.
    """
    jumps = ([RemoveJumps(max_speed_mm_s=max_speed_mm_s, max_speed_px_s=max_speed_px_s)]
             if (max_speed_mm_s or max_speed_px_s) else [])
    if smooth == "kalman":
        return [*jumps, Kalman(min_confidence=min(threshold, 0.99), max_gap_s=max_gap_s)]
    steps: list = [ConfidenceMask(threshold=threshold), *jumps, Interpolate(max_gap_s=max_gap_s)]
    if smooth == "savgol":
        steps.append(SavGol(window_s=window_s, order=2))
    elif smooth == "median":
        steps.append(Median(window_s=window_s))
    return steps
