"""The 3D view of a triangulated pose on a page: a frame slider, the 3D path and the heights.

Shared by the Animal QC page (an animal whose pose has ``z``) and the pose-file review page.
The numbers are :func:`dashboard.threed_view.trajectory_3d`'s (features.threed).
"""

from __future__ import annotations

import streamlit as st
import xarray as xr

from dashboard.threed_view import height_figure, trajectory_3d, trajectory_3d_figure


def show_3d(ds: xr.Dataset, *, key: str) -> None:
    """3D trajectory (equal aspect, mm) and height above the floor over time, with a frame slider.

    Says so on the page when the floor cannot be found (no heights) or the features refuse
    the file (e.g. no frame rate), instead of drawing x-y only.
    """
    st.header("3D trajectory")
    try:
        traj = trajectory_3d(ds)
    except ValueError as exc:
        st.error(f"3D features cannot be computed for this pose: {exc}")
        return
    n = int(ds.sizes["time"])
    row = st.slider("Frame", 0, n - 1, key=f"{key}_frame")
    xyz = ds["position"].transpose("time", "space", "keypoint", "individual").values[row]
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(trajectory_3d_figure(traj, xyz, row, keypoints=[str(k) for k in ds["keypoint"].values]),
                        key=f"{key}_traj")
        st.caption(f"path of {traj.reference or 'the keypoints centroid'} in world mm, equal aspect; "
                   "black diamonds: every keypoint of this frame; drag to turn")
    with right:
        if traj.has_heights:
            st.plotly_chart(height_figure(traj, float(ds["time"].values[row])), key=f"{key}_height")
            st.caption(f"floor: {traj.floor}")
        else:
            st.warning(f"No heights above the floor: {traj.floor}")
