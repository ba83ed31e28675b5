"""``pose.keypoints``: one role resolver for DeepLabCut / SLEAP / ethopose names."""

from __future__ import annotations

import numpy as np
import pytest

from pose.dataset import from_numpy
from pose.keypoints import (
    KeypointRoleError,
    find_keypoint,
    find_role,
    normalise_name,
    select_keypoints,
)

DLC = ["Nose", "Left Ear", "Right Ear", "Mid-Back", "Tail base ", "Left forepaw"]
OURS = ["snout", "left_ear", "right_ear", "body_center", "tail_base", "tail_tip"]


def _ds(names):
    n = len(names)
    return from_numpy(np.zeros((5, 2, n, 1)), np.ones((5, n, 1)), fps=10.0, keypoints=names)


@pytest.mark.parametrize("names", [DLC, OURS])
def test_roles_resolve_across_naming_schemes(names):
    ds = _ds(names)
    assert find_role(ds, "snout") == names[0]
    assert find_role(ds, "body_centre") == names[3]
    assert find_role(ds, "tail_base") == names[4]
    assert find_role(ds, "left_ear") == names[1] and find_role(ds, "right_ear") == names[2]
    assert select_keypoints(ds, "head") == names[:3]
    assert select_keypoints(ds, "body") == [names[3], names[4]]


def test_missing_role_and_names():
    ds = _ds(OURS)
    assert find_role(ds, "forepaws") is None
    with pytest.raises(KeypointRoleError, match="no forepaws keypoint"):
        select_keypoints(ds, "forepaws")
    with pytest.raises(KeypointRoleError, match="paw"):
        select_keypoints(ds, "body", ["paw"])
    assert select_keypoints(DLC, "forepaws") == ["Left forepaw"]
    with pytest.raises(ValueError, match="unknown keypoint role"):
        find_role(ds, "wing")  # type: ignore[arg-type]


def test_find_keypoint_tolerates_spaces_and_case():
    assert find_keypoint(DLC, "tail base") == "Tail base "
    assert normalise_name("Tail base ") == normalise_name("tail_base") == "tailbase"
    with pytest.raises(KeyError, match="has"):
        find_keypoint(DLC, "tail_tip")
