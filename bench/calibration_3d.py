"""3D pose bench: calibration against references, triangulation of real labels, the 3D virtual mouse.

Usage::

    python3 bench/calibration_3d.py [--quick] [--out bench/results/calibration_3d.md]

Sections (each skipped when its shared data is absent):

1. dlc-stereo: 14 checkerboard pairs vs the Bouguet toolbox (fc, cc, err_std).
2. sleap-anipose-session: 4-camera ChArUco RMS per camera; its 2D labels triangulated with
   our calibration and with the reference calibration.toml; pairwise label consistency.
3. The virtual mouse (pose.synthetic.multicam): board images -> calibration -> 1 px noisy 2D
   -> 3D; median 3D error (mm) and mean body-centre speed vs truth, over rigs and noise.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from features.filters import filter_savgol
from features.kinematics import compute_speed
from pose import io as pio
from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses, render_board_views
from pose.synthetic.openfield import simulate_open_field
from pose.threed.board import Board, detect_board, load_board
from pose.threed.calibration import calibrate_cameras
from pose.threed.cameras import load_calibration, rodrigues, select_cameras
from pose.threed.sources import detect_all, group_by_camera
from pose.threed.triangulation import reprojection_errors, triangulate_points, triangulate_poses

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _table(header: list[str], rows: list[list[object]]) -> str:
    def fmt(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def bench_dlc_stereo() -> str:
    from scipy.io import loadmat

    folder = DATA / "dlc-stereo"
    if not folder.is_dir():
        return "dlc-stereo absent: skipped\n"
    board = Board(kind="checkerboard", board_x=9, board_y=6, square_length=30.0)
    t0 = time.process_time()
    dets, _, sizes, _ = detect_all(group_by_camera([str(folder)]), board)
    res = calibrate_cameras(dets, board, sizes)
    cpu = time.process_time() - t0
    rows = []
    for cam in res.cameras:
        ref = loadmat(folder / f"Calib_Results_{cam.name}.mat")
        fc, cc, err = ref["fc"].ravel(), ref["cc"].ravel(), ref["err_std"].ravel()
        f = cam.matrix[[0, 1], [0, 1]]
        rows.append([cam.name, len(res.used[cam.name]), f"{f[0]:.2f} / {f[1]:.2f}", f"{fc[0]:.2f} / {fc[1]:.2f}",
                     float(np.max(np.abs(f / fc - 1)) * 100), float(np.max(np.abs(cam.matrix[:2, 2] - cc))),
                     res.intrinsic_rms_px[cam.name], res.rms_px[cam.name], float(np.mean(err) * np.sqrt(2))])
    base = np.linalg.norm(res.cameras[1].translation)
    return (_table(["camera", "views", "f ours (px)", "f Bouguet", "max |df| %", "max |dc| px",
                    "RMS single-camera px", "RMS joint BA px", "Bouguet RMS px (err_std*sqrt 2)"], rows)
            + f"\n\nbaseline {base:.1f} mm; detection + calibration {cpu:.1f} s CPU\n")


def _kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rigid transform of a onto b (N, 3); returns a transformed."""
    ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    ca, cb = a[ok].mean(0), b[ok].mean(0)
    u, _, vt = np.linalg.svd((a[ok] - ca).T @ (b[ok] - cb))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1, 1, d]) @ u.T
    return (a - ca) @ r.T + cb


def bench_sleap_anipose() -> str:
    import h5py

    folder = DATA / "sleap-anipose-session"
    if not folder.is_dir():
        return "sleap-anipose-session absent: skipped\n"
    names = ["back", "mid", "side", "top"]
    board = load_board(folder / "board.toml")
    t0 = time.process_time()
    sources = group_by_camera([str(folder / n / "calibration_images") for n in names], cameras=names)
    dets, _, sizes, _ = detect_all(sources, board)
    res = calibrate_cameras(dets, board, sizes)
    cpu = time.process_time() - t0
    ref_cams = select_cameras(load_calibration(folder / "calibration.toml")[0], names)
    poses = {n: pio.load(folder / n / f"minimal_{n}_proofread.slp") for n in names}
    out = [f"calibration: {cpu:.1f} s CPU (detection ~85 %)\n"]
    rows = []
    ref3d = h5py.File(folder / "points3d.h5", "r")["tracks"][:]  # (time, individual, keypoint, 3)
    for label, cams in (("ours", res.cameras), ("reference calibration.toml", ref_cams)):
        ds, rep = triangulate_poses(poses, cams)
        p = ds.position.transpose("time", "individual", "keypoint", "space").values.reshape(-1, 3)
        d3 = np.linalg.norm(_kabsch(p, ref3d.reshape(-1, 3)) - ref3d.reshape(-1, 3), axis=1)
        for n in names:
            err = np.linalg.norm(rep[n].position.values - poses[n].position.values, axis=1)
            used = ds["camera_used"].sel(camera=n).values > 0
            cam = next(c for c in cams if c.name == n)
            rows.append([label, n, res.rms_px[n] if label == "ours" else "-", f"{cam.matrix[0, 0]:.1f}",
                         float(np.nanmedian(err)), float(np.nanmedian(err[used])), float(used.mean()),
                         float(np.nanmedian(d3))])
    out.append(_table(["calibration", "camera", "board RMS px", "f px", "labels: median reproj px (all)",
                       "median reproj px (used)", "share used", "3D vs points3d.h5 after rigid fit, median mm"],
                      rows))
    # pairwise consistency of the labels: triangulate from two cameras, reproject into all
    pos = {n: poses[n].position.transpose("time", "keypoint", "individual", "space").values.reshape(-1, 2)
           for n in names}
    by = {c.name: c for c in res.cameras}
    prow = []
    for a, b in itertools.combinations(names, 2):
        pts = triangulate_points([by[a], by[b]], np.stack([pos[a], pos[b]]))
        prow.append([f"{a}+{b}"] + [float(np.nanmedian(reprojection_errors([by[n]], pts, pos[n][None])[0]))
                                    for n in names])
    out.append("\n\nLabels triangulated from one camera pair (our calibration), median reprojection px:\n")
    out.append(_table(["pair"] + names, prow))
    return "\n".join(out) + "\n"


def run_virtual(kind: str, n_cameras: int, noise_px: float, n_views: int = 15, seconds: float = 30.0,
                seed: int = 1) -> list[object]:
    if kind == "checkerboard":
        board = Board(kind="checkerboard", board_x=9, board_y=6, square_length=20.0)
    else:
        board = Board(kind="charuco", board_x=8, board_y=6, square_length=25.0, marker_length=18.0, dict_size=50)
    t0 = time.process_time()
    rig = make_rig(n_cameras, seed=seed)
    views = render_board_views(board, rig, n_views=n_views, seed=seed + 1)
    dets = {c.name: {k: d for k, img in views.images[c.name].items()
                     if img is not None and (d := detect_board(img, board)) is not None} for c in rig}
    origin = sorted(set.intersection(*(set(v) for v in dets.values())))[0]
    res = calibrate_cameras(dets, board, {c.name: c.size for c in rig}, origin_frame=origin)
    truth = lift_to_3d(simulate_open_field(seconds, fps=30, seed=seed + 2))
    poses = project_poses(truth, rig, noise_px=noise_px, seed=seed + 3)
    ds, _ = triangulate_poses(poses, res.cameras)
    r_b, t_b = rodrigues(views.poses[origin][0]), views.poses[origin][1]
    pos = np.einsum("ij,tjkn->tikn", r_b, ds.position.values) + t_b[None, :, None, None]
    ds = ds.assign(position=(ds.position.dims, pos))
    err = np.linalg.norm(pos - truth.position.values, axis=1)
    s_true = compute_speed(truth.position.sel(keypoint="body_center")).values
    speeds = []
    for window_s in (None, 0.3, 0.5):
        src = ds if window_s is None else filter_savgol(ds, window_s=window_s)
        s = compute_speed(src.position.sel(keypoint="body_center")).values
        ok = np.isfinite(s) & np.isfinite(s_true)
        speeds.append(100 * (s[ok].mean() / s_true[ok].mean() - 1))
    f_err = max(abs(c.matrix[0, 0] / t.matrix[0, 0] - 1) for c, t in zip(res.cameras, rig, strict=True)) * 100
    return [kind, n_cameras, noise_px, f"{sum(len(v) for v in dets.values())}", max(res.rms_px.values()), f_err,
            float(np.nanmedian(err)), float(np.nanpercentile(err, 95)), *speeds, time.process_time() - t0]


def bench_virtual(quick: bool) -> str:
    setups = [("checkerboard", 3, 1.0)]
    if not quick:
        setups += [("charuco", 3, 1.0), ("checkerboard", 2, 1.0), ("checkerboard", 4, 1.0),
                   ("checkerboard", 3, 0.5), ("checkerboard", 3, 2.0), ("charuco", 4, 2.0)]
    rows = [run_virtual(*s) for s in setups]
    return _table(["board", "cameras", "2D noise px", "board views detected", "worst board RMS px",
                   "worst |df| %", "median 3D error mm", "p95 3D error mm", "speed bias % raw",
                   "speed bias % savgol 0.3 s", "speed bias % savgol 0.5 s", "CPU s"], rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the main virtual-mouse rig")
    ap.add_argument("--out", default=None, help="also write the tables to this markdown file")
    args = ap.parse_args()
    parts = ["## dlc-stereo (Bouguet reference)\n", bench_dlc_stereo(),
             "## sleap-anipose-session (4 cameras, ChArUco)\n", bench_sleap_anipose(),
             "## virtual mouse (board images -> calibration -> noisy 2D -> 3D)\n", bench_virtual(args.quick)]
    text = "\n".join(parts)
    print(text)
    if args.out:
        from pose.atomic import write_text_atomic

        write_text_atomic(args.out, "# 3D calibration bench\n\n`python3 bench/calibration_3d.py`\n\n" + text)


if __name__ == "__main__":
    main()
