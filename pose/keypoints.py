"""Keypoint names and body-part roles: the one resolver every layer uses.

Tools name the same body part differently (DeepLabCut ``Nose`` / ``Tail base`` /
``Mid-Back``, SLEAP ``nose`` / ``tailbase``, ethopose ``snout`` / ``tail_base`` /
``body_center``; DeepLabCut names may carry trailing spaces). This module maps a role
(``snout``, ``body_centre``, ``tail_base``, ``left_ear``...) to the keypoints of a pose
Dataset, so that features, behaviour rules and protocols agree on which point is "the
body centre".

- :func:`find_keypoint`: one name, matched modulo surrounding whitespace and case.
- :func:`find_role`: the single best keypoint for a role (names in order of preference),
  or ``None``.
- :func:`select_keypoints`: every keypoint of a role, in the Dataset's order (group roles
  such as ``head``, ``body``, ``forepaws`` used for centroids), or an explicit list checked.

Matching normalises names with :func:`normalise_name` (lower case, letters and digits only),
so ``"Tail base"``, ``"tail_base"`` and ``"tailbase"`` are one name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

import xarray as xr

__all__ = [
    "Role", "ROLE_NAMES", "KeypointRoleError", "normalise_name", "keypoint_names",
    "find_keypoint", "find_role", "select_keypoints",
]

Role = Literal[
    "snout", "head", "body", "body_centre", "tail_base", "forepaws", "hindpaws",
    "left_ear", "right_ear",
]

#: Role -> accepted names, normalised, in order of preference (the first present wins in
#: :func:`find_role`).
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "snout": ("snout", "nose", "head", "headtip"),
    "head": ("nose", "snout", "leftear", "rightear", "earleft", "earright", "lear",
             "head", "neck"),
    "body": ("midback", "back", "bodycenter", "bodycentre", "centroid", "center", "centre",
             "spine", "spine1", "spine2", "spine3", "midbody", "body", "tailbase", "leftleg",
             "rightleg", "lefthip", "righthip", "hip"),
    "body_centre": ("bodycenter", "bodycentre", "centroid", "midback", "center", "centre"),
    "tail_base": ("tailbase", "tailroot", "baseoftail"),
    "forepaws": ("leftforepaw", "rightforepaw", "forepawleft", "forepawright", "leftfrontpaw",
                 "rightfrontpaw", "lfpaw", "rfpaw", "leftpaw", "rightpaw", "forepaw"),
    "hindpaws": ("lefthindpaw", "righthindpaw", "hindpawleft", "hindpawright", "hindpawl",
                 "hindpawr", "leftbackpaw", "rightbackpaw", "lhpaw", "rhpaw", "hindpaw"),
    "left_ear": ("leftear", "earleft", "lear"),
    "right_ear": ("rightear", "earright"),
}


class KeypointRoleError(ValueError):
    """No keypoint of the pose data can play the requested role (or a named one is absent)."""


def normalise_name(name: object) -> str:
    """Lower case, letters and digits only: ``"Tail base "`` -> ``"tailbase"``."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def keypoint_names(ds: xr.Dataset | Iterable[str]) -> list[str]:
    """Keypoint names of a pose Dataset (or of an iterable of names), as ``str``."""
    if isinstance(ds, xr.Dataset):
        return [str(k) for k in ds.coords["keypoint"].values]
    return [str(k) for k in ds]


def find_keypoint(ds: xr.Dataset | Iterable[str], name: str) -> str:
    """The keypoint called ``name``, matching exactly, then modulo surrounding whitespace,
    then modulo case (DeepLabCut names such as ``"Hind paw tao "`` carry trailing spaces).

    Raises
    ------
    KeyError
        Listing the keypoints present.
    """
    names = keypoint_names(ds)
    if name in names:
        return name
    for k in names:
        if k.strip() == name.strip():
            return k
    for k in names:
        if k.strip().lower() == name.strip().lower():
            return k
    raise KeyError(f"keypoint {name!r} not in the pose Dataset (has: {[n.strip() for n in names]})")


def _check_role(role: str) -> tuple[str, ...]:
    if role not in ROLE_NAMES:
        raise ValueError(f"unknown keypoint role {role!r}; roles: {sorted(ROLE_NAMES)}")
    return ROLE_NAMES[role]


def find_role(ds: xr.Dataset | Iterable[str], role: Role) -> str | None:
    """The best keypoint for ``role`` (first accepted name present, in preference order).

    Returns
    -------
    str or None
        The keypoint's name as it appears in ``ds`` (``None`` when no keypoint fits).
    """
    accepted = _check_role(role)
    by_norm: dict[str, str] = {}
    for k in keypoint_names(ds):
        by_norm.setdefault(normalise_name(k), k)
    return next((by_norm[a] for a in accepted if a in by_norm), None)


def select_keypoints(
    ds: xr.Dataset | Iterable[str], role: Role, keypoints: Sequence[str] | None = None
) -> list[str]:
    """Every keypoint of ``ds`` that plays ``role`` (in the Dataset's order), or check an
    explicit list.

    Parameters
    ----------
    ds
        Pose Dataset (or keypoint names).
    role
        One of :data:`Role`.
    keypoints
        Explicit names; checked against the Dataset and returned as given.

    Raises
    ------
    KeypointRoleError
        When none of the keypoints can play the role (the message lists the names found and
        how to pass them explicitly), or an explicit name is missing.
    """
    names = keypoint_names(ds)
    if keypoints is not None:
        missing = [k for k in keypoints if k not in names]
        if missing:
            raise KeypointRoleError(f"keypoint(s) {missing} not in the pose data (has {names})")
        return list(keypoints)
    accepted = set(_check_role(role))
    found = [n for n in names if normalise_name(n) in accepted]
    if not found:
        raise KeypointRoleError(
            f"no {role} keypoint among {names}; pass the names explicitly "
            f"(e.g. {role}_keypoints=[...])"
        )
    return found
