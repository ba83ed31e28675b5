"""sleap-anipose back/side labels: what 3D offset per keypoint would reconcile them with mid+top?

Residual = a camera's label minus the mid+top 3D point projected into it (our board calibration). Models fitted
on frames 0-59, scored on 60-119 (median px): one image offset per keypoint; one 3D offset per keypoint fixed in
the mouse's body frame (a different surface point labelled); one 3D offset per keypoint fixed in the world.
Prints how far the mouse moves (if it hardly moves, the three cannot be told apart) and the size of the 3D
offsets. ``nice -n 10 python3 bench/sleap_label_offsets.py [--calibration cached.toml]`` (~1 CPU-min with the
calibration, ~7 CPU-s with a cached one).
"""
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from pose import io as pio
from pose.threed.board import load_board
from pose.threed.calibration import calibrate_cameras
from pose.threed.cameras import load_calibration, save_calibration
from pose.threed.sources import detect_all, group_by_camera
from pose.threed.triangulation import triangulate_points

warnings.simplefilter("ignore")

F = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sleap-anipose-session"
names = ["back", "mid", "side", "top"]
cal = Path(sys.argv[sys.argv.index("--calibration") + 1]) if "--calibration" in sys.argv else Path("/tmp/sleap_calib.toml")
if not cal.exists():
    board = load_board(F / "board.toml")
    src = group_by_camera([str(F / n / "calibration_images") for n in names], cameras=names)
    dets, _, sizes, _ = detect_all(src, board)
    res = calibrate_cameras(dets, board, sizes)
    save_calibration(res.cameras, cal, res.metadata())
cams = {c.name: c for c in load_calibration(cal)[0]}
poses = {n: pio.load(F / n / f"minimal_{n}_proofread.slp") for n in names}
pk = {n: poses[n].position.transpose("time", "keypoint", "individual", "space").values[:, :, 0] for n in names}
kps = [str(k) for k in poses["mid"].keypoint.values]
T, K = pk["mid"].shape[:2]
ref = triangulate_points([cams["mid"], cams["top"]], np.stack([pk["mid"].reshape(-1, 2), pk["top"].reshape(-1, 2)])).reshape(T, K, 3)
# body frame: x = Tail_0 -> Head (floor-projected via the track plane), z = plane normal, y = z x x
c = np.nanmean(ref, axis=1)
ok = np.isfinite(c).all(1)
_, _, vt = np.linalg.svd(c[ok] - c[ok].mean(0))
up = vt[2]
fwd = ref[:, kps.index("Head")] - ref[:, kps.index("Tail_0")]
fwd = fwd - (fwd @ up)[:, None] * up
fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
side = np.cross(up, fwd)
R = np.stack([fwd, side, np.broadcast_to(up, fwd.shape)], axis=-1)  # (T, 3, 3): body -> world
head = np.degrees(np.arctan2(fwd @ np.cross(up, vt[0]), fwd @ vt[0]))
print("track spread mm", np.round(np.nanstd(c, axis=0), 1), "heading range deg", np.round(np.nanpercentile(head, [5, 95]), 0))
fit, test = np.arange(T) < T // 2, np.arange(T) >= T // 2
def med(r): return float(np.nanmedian(np.linalg.norm(r, axis=-1)))
for n in ("back", "side"):
    cam = cams[n]
    proj = cam.project(ref.reshape(-1, 3)).reshape(T, K, 2)
    r = pk[n] - proj
    img = med(r[test] - np.nanmedian(r[fit], axis=0))
    out = {"none": med(r[test]), "image offset per keypoint": img}
    for label, frame in (("3D offset per keypoint, body frame", True), ("3D offset per keypoint, world", False)):
        d = np.zeros((K, 3))
        for k in range(K):
            m = fit & np.isfinite(r[:, k]).all(1) & np.isfinite(ref[:, k]).all(1) & np.isfinite(R[:, 0, 0])
            if m.sum() < 5:
                d[k] = np.nan
                continue

            def resid(v, k=k, m=m, frame=frame, cam=cam, n=n):
                off = (R[m] @ v) if frame else np.broadcast_to(v, (m.sum(), 3))
                return (cam.project(ref[m, k] + off) - pk[n][m, k]).ravel()
            s = least_squares(resid, np.zeros(3), loss="soft_l1", f_scale=3.0)
            d[k] = s.x
        off = np.einsum("tij,kj->tki", R, d) if frame else np.broadcast_to(d, (T, K, 3))
        p2 = cam.project((ref + off).reshape(-1, 3)).reshape(T, K, 2)
        out[label] = med((pk[n] - p2)[test])
        if frame:
            out["|3D body-frame offset| median mm"] = float(np.nanmedian(np.linalg.norm(d, axis=1)))
    print(n, {k: round(v, 2) for k, v in out.items()})
