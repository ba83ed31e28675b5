"""Individuals stored as prefixed keypoints: split them into the ``individual`` dimension.

Some multi-animal tables use the single-animal layout with one prefix per animal in the
body-part names (DeepOF's ``B_Nose``, ``W_Nose``...). :func:`split_prefixed_individuals`
turns such a Dataset into one with an ``individual`` per prefix.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pose.dataset import append_history, from_numpy, validate_pose


def split_prefixed_individuals(ds: xr.Dataset, *, sep: str = "_") -> xr.Dataset:
    """Split keypoints named ``<animal><sep><part>`` into individuals ``<animal>``.

    Parameters
    ----------
    ds
        Pose Dataset with one individual whose keypoints carry a per-animal prefix.
    sep
        Separator after the prefix (the first occurrence splits).

    Returns
    -------
    xarray.Dataset
        keypoints = the parts (in first-seen order), individuals = the prefixes.

    Raises
    ------
    ValueError
        When ``ds`` has several individuals already, a keypoint has no prefix, fewer than
        two prefixes are found, or the animals do not share the same parts.
    """
    validate_pose(ds, context="split_prefixed_individuals")
    if ds.sizes["individual"] != 1:
        raise ValueError(f"split_prefixed_individuals: the Dataset already has "
                         f"{ds.sizes['individual']} individuals")
    names = [str(k) for k in ds.keypoint.values]
    bad = [n for n in names if sep not in n]
    if bad:
        raise ValueError(f"split_prefixed_individuals: keypoint(s) {bad} have no {sep!r} prefix")
    split = [n.split(sep, 1) for n in names]
    animals = list(dict.fromkeys(a for a, _ in split))
    parts = list(dict.fromkeys(p for _, p in split))
    if len(animals) < 2:
        raise ValueError(f"split_prefixed_individuals: one prefix only ({animals}): not multi-animal")
    for a in animals:
        have = [p for b, p in split if b == a]
        if sorted(have) != sorted(parts):
            raise ValueError(f"split_prefixed_individuals: animal {a!r} has parts {have}, "
                             f"others {parts}")
    pos_in = ds["position"].values[..., 0]
    conf_in = ds["confidence"].values[..., 0]
    pos = np.full((pos_in.shape[0], pos_in.shape[1], len(parts), len(animals)), np.nan)
    conf = np.full((pos_in.shape[0], len(parts), len(animals)), np.nan)
    for j, (a, p) in enumerate(split):
        pos[:, :, parts.index(p), animals.index(a)] = pos_in[:, :, j]
        conf[:, parts.index(p), animals.index(a)] = conf_in[:, j]
    out = from_numpy(pos, conf, keypoints=parts, individuals=animals, fps=ds.attrs.get("fps"),
                     source_software=ds.attrs.get("source_software"),
                     source_file=ds.attrs.get("source_file"), video_path=ds.attrs.get("video_path"),
                     px_per_mm=ds.attrs.get("px_per_mm"))
    out = out.assign_coords(time=ds.coords["time"].values)
    out.attrs["history"] = list(ds.attrs.get("history", []))
    return append_history(out, "split_prefixed_individuals", {"sep": sep, "individuals": animals})
