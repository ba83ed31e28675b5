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

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from features.steps import CleanStep
from protocols.qc import QCRules
from protocols.social import SOCIAL_ENDPOINTS, SocialOptions
from protocols.uncertainty import UncertaintyOptions

AssayType = Literal["open_field", "elevated_plus_maze", "three_chamber", "gait", "fear_conditioning",
                    "social_interaction"]

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
    "social_interaction": SOCIAL_ENDPOINTS,  # two tracked animals (protocols.social)
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
#: A protocol's cleaning recipe is a list of :mod:`features.steps` models, run once by
#: :func:`features.filters.clean` (``- {step: confidence, threshold: 0.5}``; the older
#: ``p_cutoff`` / ``polyorder`` keys are accepted).
FilterStep = CleanStep


# ----------------------------------------------------------------------------- behaviours
class _Rule(_Strict):
    """Common fields of a behaviour rule: the column name and bout limits. Every default
    equals the default of the ``behavior.rules`` function the rule calls (a test checks it);
    ``window_s=None`` lets the rule derive its speed window from the data."""

    name: str
    min_bout_s: float = Field(default=1.0, gt=0)
    merge_gap_s: float = Field(default=0.25, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _legacy_thresholds(cls, data: Any) -> Any:
        """Accept the older ``thresholds: {...}`` mapping (cm units converted to mm)."""
        if not isinstance(data, dict) or "thresholds" not in data:
            return data
        data = dict(data)
        for key, value in dict(data.pop("thresholds") or {}).items():
            if key.endswith("_cm_s"):
                key, value = key[:-5] + "_mm_s", 10.0 * float(value)
            elif key.endswith("_cm"):
                key, value = key[:-3] + "_mm", 10.0 * float(value)
            data.setdefault(key, value)
        return data


class FreezingRule(_Rule):
    """``behavior.rules.detect_freezing``: head and body still (self-calibrating)."""

    rule: Literal["freezing"]
    name: str = "freezing"
    enter_speed_mm_s: float = Field(default=10.0, gt=0)
    exit_speed_mm_s: float = Field(default=12.5, gt=0)
    window_s: float | None = Field(default=None, gt=0)
    calibrate: bool = True
    rearing_length_ratio: float | None = Field(default=0.75, gt=0)
    grooming_paw_snout_mm: float | None = Field(default=15.0, gt=0)


class ImmobilityRule(_Rule):
    """``behavior.rules.detect_immobility``: body centroid slower than ``max_speed_mm_s``."""

    rule: Literal["immobility"]
    name: str = "immobility"
    max_speed_mm_s: float = Field(default=10.0, gt=0)
    window_s: float | None = Field(default=None, gt=0)


class LocomotionRule(_Rule):
    """``behavior.rules.detect_locomotion``: body centroid faster than ``min_speed_mm_s``."""

    rule: Literal["locomotion"]
    name: str = "locomotion"
    min_speed_mm_s: float = Field(default=30.0, gt=0)
    window_s: float | None = Field(default=None, gt=0)
    min_bout_s: float = Field(default=0.3, gt=0)
    merge_gap_s: float = Field(default=0.2, ge=0)


class RearingRule(_Rule):
    """``behavior.rules.detect_rearing``: body foreshortened, body centre not travelling."""

    rule: Literal["rearing"]
    name: str = "rearing"
    max_length_ratio: float = Field(default=0.75, gt=0, lt=1)
    max_body_speed_mm_s: float = Field(default=50.0, gt=0)
    smooth_s: float = Field(default=0.2, ge=0)
    min_bout_s: float = Field(default=0.3, gt=0)
    merge_gap_s: float = Field(default=0.2, ge=0)


class GroomingRule(_Rule):
    """``behavior.rules.detect_grooming``: body still, forepaws at the snout."""

    rule: Literal["grooming"]
    name: str = "grooming"
    max_body_speed_mm_s: float = Field(default=15.0, gt=0)
    max_paw_snout_mm: float = Field(default=15.0, gt=0)
    min_length_ratio: float = Field(default=0.75, gt=0)
    smooth_s: float = Field(default=0.5, ge=0)
    merge_gap_s: float = Field(default=0.5, ge=0)


#: One behaviour of a protocol: a typed rule, told apart by ``rule``.
Behaviour = Annotated[
    FreezingRule | ImmobilityRule | LocomotionRule | RearingRule | GroomingRule,
    Field(discriminator="rule"),
]


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


# ----------------------------------------------------------------------------- assays
class OpenFieldAssay(_Strict):
    """Open field: distance, speed, centre and wall zones, rearing."""

    kind: Literal["open_field"] = "open_field"


class ElevatedPlusMazeAssay(_Strict):
    """Elevated plus maze: open/closed arm time and entries, head dips."""

    kind: Literal["elevated_plus_maze"] = "elevated_plus_maze"


class ThreeChamberAssay(_Strict):
    """Three-chamber sociability: sniff zones ``social_sniff`` / ``object_sniff``."""

    kind: Literal["three_chamber"] = "three_chamber"


class GaitAssay(_Strict):
    """Gait: step cycles of ``options.paws``."""

    kind: Literal["gait"] = "gait"
    options: GaitOptions


class FearConditioningAssay(_Strict):
    """Fear conditioning: freezing over the session and per epoch."""

    kind: Literal["fear_conditioning"] = "fear_conditioning"
    epochs: list[Epoch] = Field(default_factory=list)


AssaySpec = Annotated[
    OpenFieldAssay | ElevatedPlusMazeAssay | ThreeChamberAssay | GaitAssay | FearConditioningAssay,
    Field(discriminator="kind"),
]

FeatureFamily = Literal["speed", "distance", "heading", "zones", "keypoint_speeds", "gait"]

#: Feature families each endpoint is computed from (others need only behaviour columns).
ENDPOINT_FAMILIES: dict[str, tuple[str, ...]] = {
    "distance_mm": ("distance",), "mean_speed_mm_s": ("speed",),
    "centre_time_pct": ("zones",), "centre_entries": ("zones",), "latency_to_centre_s": ("zones",),
    "thigmotaxis_pct": ("zones",), "open_arm_time_pct": ("zones",),
    "open_arm_entries_pct": ("zones",), "open_arm_entries": ("zones",),
    "closed_arm_entries": ("zones",), "head_dips": ("zones",), "social_time_s": ("zones",),
    "object_time_s": ("zones",), "sociability_index": ("zones",),
    "social_chamber_time_pct": ("zones",), "object_chamber_time_pct": ("zones",),
    **{e: ("gait",) for e in ENDPOINTS["gait"]},
}


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
    #: Feature families computed into the per-frame table (``frames.parquet``). Empty: the
    #: families the endpoints need; listing more (e.g. ``heading``) adds their columns;
    #: listing fewer than the endpoints need is an error naming the endpoint.
    features: list[FeatureFamily] = Field(default_factory=list)
    behaviours: list[Behaviour] = Field(default_factory=list)
    epochs: list[Epoch] = Field(default_factory=list)
    gait: GaitOptions | None = None
    endpoints: list[str] = Field(min_length=1)
    min_session_s: float = Field(default=0.0, ge=0)
    #: Zone visits and excursions shorter than this are flicker (0: per-frame occupancy).
    min_dwell_s: float = Field(default=0.0, ge=0)
    #: An animal whose tracked frames (confident, before gap filling) are fewer than this
    #: percentage is flagged ``low_coverage`` and left out of the group statistics.
    min_coverage_pct: float = Field(default=80.0, ge=0, le=100)
    #: Tracking-quality limits (low confidence, jumps, interpolation) and which flags are left
    #: out of the group statistics (protocols.qc).
    qc: QCRules = Field(default_factory=QCRules)
    #: Dyadic social test (assay ``social_interaction``): subject, thresholds, identity gate.
    social: SocialOptions | None = None
    #: Pose-uncertainty intervals (``<endpoint>_lo`` / ``_hi``, protocols.uncertainty); off when absent.
    uncertainty: UncertaintyOptions | None = None

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
        rules = [b.name for b in self.behaviours]
        if len(set(rules)) != len(rules):
            raise ValueError(f"duplicate behaviour names: {rules}")
        if self.features:
            for e in self.endpoints:
                missing = [f for f in ENDPOINT_FAMILIES.get(e, ()) if f not in self.features]
                if missing:
                    raise ValueError(f"endpoint {e!r} needs feature(s) {missing}; add them to 'features' "
                                     "(or leave 'features' empty to compute what the endpoints need)")
        return self

    def zone_names(self) -> list[str]:
        """Names of the protocol's zones, in order."""
        return [z.name for z in self.zones]

    def feature_families(self) -> list[str]:
        """Families to compute: ``features`` if given, else what the endpoints need (speed
        and distance always: the report plots them)."""
        if self.features:
            return list(self.features)
        need = {"speed", "distance"} | {f for e in self.endpoints for f in ENDPOINT_FAMILIES.get(e, ())}
        return [f for f in FeatureFamily.__args__ if f in need]  # type: ignore[attr-defined]

    @property
    def assay_spec(self) -> AssaySpec:
        """The assay with its own options, as one typed model (dispatched on by the endpoints)."""
        spec = {"kind": self.assay}
        if self.gait is not None:
            spec["options"] = self.gait
        if self.assay == "fear_conditioning":
            spec["epochs"] = self.epochs
        return _ASSAY_SPEC.validate_python(spec)


_ASSAY_SPEC: TypeAdapter = TypeAdapter(AssaySpec)


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
