"""Typed assay protocols: what to measure, how to clean it, and where the zones are.

A protocol is a YAML file validated once, at load, by the pydantic models below
(``extra="forbid"`` everywhere: a misspelt key fails with its name and the file). The five
built-in protocols ship as package data (``protocols/open_field.yaml``, ...); load them by
name with :func:`load_protocol` (``load_protocol("open_field")``) or give a path.

Geometry is written in *arena coordinates*: either ``arena_fraction`` (0..1 along the
arena's width and height, origin at the top-left corner) or ``mm`` from the top-left
corner, or raw ``px``. The arena itself is placed in the image by one of three sources:
explicit corner pixels in the protocol, an ``arena.json`` file per video, or the median
position of tracked arena-corner keypoints. See :mod:`protocols.geometry`.
"""

from __future__ import annotations

import inspect
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

AssayType = Literal["open_field", "elevated_plus_maze", "three_chamber", "gait", "fear_conditioning"]

#: Endpoints each assay can report (the columns of the per-animal table).
ENDPOINTS: dict[str, tuple[str, ...]] = {
    "open_field": (
        "distance_mm", "mean_speed_mm_s", "centre_time_pct", "centre_entries",
        "latency_to_centre_s", "rearing_count", "rearing_time_s", "thigmotaxis_pct",
        "immobile_time_pct",
    ),
    "elevated_plus_maze": (
        "open_arm_time_pct", "open_arm_entries_pct", "closed_arm_entries", "open_arm_entries",
        "head_dips", "distance_mm",
    ),
    "three_chamber": (
        "social_time_s", "object_time_s", "sociability_index", "social_chamber_time_pct",
        "object_chamber_time_pct", "distance_mm",
    ),
    "gait": (
        "stride_length_mm", "cadence_hz", "duty_factor", "symmetry_index", "speed_mm_s",
        "n_strides",
    ),
    "fear_conditioning": ("freezing_pct", "freezing_pct_per_epoch", "freezing_bouts"),
}


class ProtocolError(ValueError):
    """A protocol file is invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Point = tuple[float, float]


# ----------------------------------------------------------------------------- body parts
class BodyParts(_Strict):
    """Body parts the protocol needs, and how other tools name them.

    ``aliases`` maps a source name (e.g. DeepLabCut's ``nose`` or ``Tail base``) to the
    protocol's name (``snout``, ``tail_base``); matching is case-insensitive and treats
    spaces, dashes and underscores alike.
    """

    required: list[str] = Field(min_length=1)
    centre: str = Field(description="Keypoint whose position is 'where the animal is'.")
    aliases: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _centre_required(self) -> BodyParts:
        if self.centre not in self.required:
            raise ValueError(f"centre keypoint {self.centre!r} must be listed in 'required'")
        return self


# ----------------------------------------------------------------------------- arena, zones
class Arena(_Strict):
    """The arena's size and how to find it in the image.

    ``source``:
    - ``explicit``: ``corners_px`` (top-left, top-right, bottom-right, bottom-left);
    - ``arena_json``: a JSON file per video (``arena_json`` is a file name looked up beside
      the pose file, ``{stem}`` replaced by the pose file's stem);
    - ``tracked_corners``: the median over time of the keypoints named in ``corner_keypoints``;
    - ``pose_extent``: the bounding box of the centre keypoint's track (a fallback for
      quick looks; biased inwards, never use it for a study).
    """

    shape: Literal["rectangle", "circle", "plus_maze", "three_chamber", "linear_track"]
    width_mm: float = Field(gt=0)
    height_mm: float = Field(gt=0)
    source: Literal["explicit", "arena_json", "tracked_corners", "pose_extent"] = "arena_json"
    corners_px: list[Point] | None = None
    arena_json: str = "arena.json"
    corner_keypoints: list[str] | None = None

    @model_validator(mode="after")
    def _source_needs(self) -> Arena:
        if self.source == "explicit" and (self.corners_px is None or len(self.corners_px) != 4):
            raise ValueError("source 'explicit' needs corners_px: 4 points (tl, tr, br, bl)")
        if self.source == "tracked_corners" and (
            self.corner_keypoints is None or len(self.corner_keypoints) != 4
        ):
            raise ValueError("source 'tracked_corners' needs corner_keypoints: 4 names (tl, tr, br, bl)")
        return self


class PolygonZone(_Strict):
    """A polygon zone; ``points`` in ``units`` (see module docstring)."""

    kind: Literal["polygon"]
    name: str
    points: list[Point] = Field(min_length=3)
    units: Literal["arena_fraction", "mm", "px"] = "arena_fraction"


class CircleZone(_Strict):
    """A circular zone (e.g. the cup around a stranger mouse)."""

    kind: Literal["circle"]
    name: str
    centre: Point
    radius: float = Field(gt=0)
    units: Literal["arena_fraction", "mm", "px"] = "mm"


class BorderZone(_Strict):
    """The band within ``margin_mm`` of the arena's walls (thigmotaxis)."""

    kind: Literal["border"]
    name: str
    margin_mm: float = Field(gt=0)


Zone = Annotated[PolygonZone | CircleZone | BorderZone, Field(discriminator="kind")]


class Scale(_Strict):
    """Pixels per millimetre: given, taken from the pose file, or from the arena's size."""

    source: Literal["explicit", "pose_attrs", "arena_size"] = "arena_size"
    px_per_mm: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _explicit_needs_value(self) -> Scale:
        if self.source == "explicit" and self.px_per_mm is None:
            raise ValueError("scale source 'explicit' needs px_per_mm")
        return self


# ----------------------------------------------------------------------------- filters
class ConfidenceFilter(_Strict):
    """Set positions with confidence below ``p_cutoff`` to NaN."""

    step: Literal["confidence"]
    p_cutoff: float = Field(ge=0, le=1)


class JumpFilter(_Strict):
    """Drop positions that move faster than ``max_speed_px_s`` (tracking jumps)."""

    step: Literal["jumps"]
    max_speed_px_s: float = Field(gt=0)


class InterpolateFilter(_Strict):
    """Linearly fill gaps no longer than ``max_gap_s``."""

    step: Literal["interpolate"]
    max_gap_s: float = Field(gt=0)


class MedianFilter(_Strict):
    """Rolling median over ``window_s``."""

    step: Literal["median"]
    window_s: float = Field(gt=0)


class SavgolFilter(_Strict):
    """Savitzky-Golay smoothing over ``window_s`` with polynomial order ``polyorder``."""

    step: Literal["savgol"]
    window_s: float = Field(gt=0)
    polyorder: int = Field(default=2, ge=0)


FilterStep = Annotated[
    ConfidenceFilter | JumpFilter | InterpolateFilter | MedianFilter | SavgolFilter,
    Field(discriminator="step"),
]


# ----------------------------------------------------------------------------- behaviours
#: Behaviour rules a protocol may use -> (module, function) in the behaviour layer.
BEHAVIOUR_RULES: dict[str, str] = {
    "freezing": "detect_freezing",
    "rearing": "detect_rearing",
    "grooming": "detect_grooming",
    "locomotion": "detect_locomotion",
    "immobility": "detect_immobility",
}


class Behaviour(_Strict):
    """A rule-based state computed per frame by ``behavior.rules.detect_<rule>``.

    ``thresholds`` are keyword arguments of that function; their names are checked
    against its signature when the protocol loads (a typo fails there, naming the key).
    """

    name: str
    rule: Literal["freezing", "rearing", "grooming", "locomotion", "immobility"]
    thresholds: dict[str, float | str | list[str]] = Field(default_factory=dict)


class Epoch(_Strict):
    """A named time window (a tone, a shock interval, a baseline) in seconds."""

    name: str
    start_s: float = Field(ge=0)
    stop_s: float = Field(gt=0)
    kind: Literal["epoch", "cue"] = "epoch"

    @model_validator(mode="after")
    def _ordered(self) -> Epoch:
        if self.stop_s <= self.start_s:
            raise ValueError(f"epoch {self.name!r}: stop_s must be after start_s")
        return self


class GaitOptions(_Strict):
    """Paws used for stride detection (a side view sees two of them)."""

    paws: list[str] = Field(min_length=1)
    direction: Literal["x", "y"] = "x"


# ----------------------------------------------------------------------------- protocol
class Protocol(_Strict):
    """One assay protocol, as loaded from YAML."""

    name: str
    assay: AssayType
    description: str = ""
    bodyparts: BodyParts
    arena: Arena | None = None
    zones: list[Zone] = Field(default_factory=list)
    scale: Scale = Scale()
    filters: list[FilterStep] = Field(default_factory=list)
    #: Feature families the protocol relies on (recorded with the results; the endpoints
    #: of the assay decide what is computed).
    features: list[Literal["speed", "distance", "heading", "zones", "gait"]] = Field(default_factory=list)
    behaviours: list[Behaviour] = Field(default_factory=list)
    epochs: list[Epoch] = Field(default_factory=list)
    gait: GaitOptions | None = None
    endpoints: list[str] = Field(min_length=1)
    min_session_s: float = Field(default=0.0, ge=0)

    @field_validator("endpoints")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate endpoints: {sorted({e for e in v if v.count(e) > 1})}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        known = ENDPOINTS[self.assay]
        bad = [e for e in self.endpoints if e not in known]
        if bad:
            raise ValueError(f"unknown endpoint(s) {bad} for assay {self.assay!r}; known: {list(known)}")
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate zone names: {names}")
        if any(z.kind != "polygon" or z.units != "px" for z in self.zones) and self.arena is None:
            if self.zones:
                raise ValueError("zones in arena units need an 'arena' section")
        if self.scale.source == "arena_size" and self.arena is None:
            raise ValueError("scale source 'arena_size' needs an 'arena' section")
        if self.assay == "gait" and self.gait is None:
            raise ValueError("assay 'gait' needs a 'gait' section (paws)")
        return self

    def zone_names(self) -> list[str]:
        """Names of the protocol's zones, in order."""
        return [z.name for z in self.zones]


def check_behaviour_thresholds(protocol: Protocol, *, source: str = "protocol") -> None:
    """Check each behaviour's threshold names against ``behavior.rules`` (when installed).

    Raises
    ------
    ProtocolError
        Naming the behaviour, the unknown key and the accepted ones.
    """
    try:
        from behavior import rules
    except ImportError:  # the behaviour layer is optional at load time
        return
    for i, b in enumerate(protocol.behaviours):
        func = getattr(rules, BEHAVIOUR_RULES[b.rule], None)
        if func is None:
            continue
        params = inspect.signature(func).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        accepted = [n for n, p in params.items() if p.kind is not inspect.Parameter.POSITIONAL_ONLY][1:]
        for key in b.thresholds:
            if key not in accepted:
                raise ProtocolError(
                    f"{source}: behaviours.{i}.thresholds.{key}: unknown threshold for rule "
                    f"{b.rule!r} (accepted: {accepted})"
                )


def builtin_protocols() -> list[str]:
    """Names of the protocols shipped with ethopose."""
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files("protocols").iterdir()
        if p.name.endswith(".yaml")
    )


def protocol_path(name_or_path: str | Path) -> Path:
    """Path of a protocol given a file path or a built-in name (``"open_field"``)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    if p.suffix in (".yaml", ".yml"):
        raise ProtocolError(f"protocol file not found: {p}")
    builtin = resources.files("protocols").joinpath(f"{name_or_path}.yaml")
    if builtin.is_file():
        return Path(str(builtin))
    raise ProtocolError(
        f"no protocol named {str(name_or_path)!r}: give a .yaml path or one of {builtin_protocols()}"
    )


def parse_protocol(data: object, *, source: str = "protocol") -> Protocol:
    """Validate a mapping as a :class:`Protocol`; errors name ``source`` and the key path."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: expected a mapping at top level, got {type(data).__name__}")
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
            lines.append(f"{source}: {loc}: {err['msg']}")
        raise ProtocolError("invalid protocol\n" + "\n".join(lines)) from None
    check_behaviour_thresholds(protocol, source=source)
    return protocol


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Load and validate a protocol from a YAML file or a built-in name.

    Raises
    ------
    ProtocolError
        When the file is missing, is not YAML, or a key is unknown/invalid; the message
        names the file and the dotted key path (e.g. ``filters.0.p_cutof``).
    """
    path = protocol_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{path}: not valid YAML: {exc}") from None
    return parse_protocol(data, source=str(path))


def protocol_yaml(protocol: Protocol) -> str:
    """The protocol as YAML text (what the report and the results folder record)."""
    return yaml.safe_dump(protocol.model_dump(mode="json"), sort_keys=False)
