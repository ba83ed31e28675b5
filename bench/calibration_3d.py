"""3D pose bench: calibration against references, triangulation of real labels, the 3D virtual mouse.

Usage::

    python3 bench/calibration_3d.py [--quick] [--out bench/results/calibration_3d.md]

Sections (each skipped when its shared data is absent):

1. dlc-stereo: 14 checkerboard pairs vs the Bouguet toolbox (fc, cc, err_std).
2. sleap-anipose-session: 4-camera ChArUco RMS per camera; its 2D labels triangulated with
   our calibration and with the reference calibration.toml; pairwise label consistency; why
   back and side miss (frame offset, camera order, pixel conventions, distortion model, moved
   cameras, the structure of the residuals, label quality) and the anipose ``--animal``-style
   refinement on the labels (pose.threed.refine), cross-validated on held-out frames and
   keypoints, with the board RMS after, against aniposelib's ``bundle_adjust_iter`` when
   ``--aniposelib-path`` makes it importable.
3. The virtual mouse (pose.synthetic.multicam): board images -> calibration -> noisy 2D -> 3D
   -> default Kalman smoothing; median 3D error (mm) and body-centre speed vs truth (mean,
   frames faster than the truth's 90th percentile, 90th percentile) over 2 / 3 cameras,
   0.5 / 1 / 2 px, speed x0.5 / 1 / 2, 3 seeds.
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
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


def _median_reproj(poses: dict, cams: list, **kw: object) -> dict[str, float]:
    """Median px between each camera's labels and the 3D points (all 4 triangulated) reprojected."""
    _, rep = triangulate_poses(poses, cams, **kw)
    return {n: float(np.nanmedian(np.linalg.norm(rep[n].position.values - poses[n].position.values, axis=1)))
            for n in poses}


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
    out.append("\n\nLabels triangulated from one camera pair (our calibration), median reprojection px "
               "(a pair always fits itself closely: only the epipolar part of its error shows):\n")
    out.append(_table(["pair"] + names, prow))
    out.append("\n\n### Why back and side miss 3 px: the hypotheses, tested in order\n")
    out.append(sleap_investigation(folder, poses, res, dets, board, sizes))
    return "\n".join(out) + "\n"


def sleap_investigation(folder: Path, poses: dict, res: object, dets: dict, board: Board,
                        sizes: dict) -> str:
    """Frame offset, camera order, pixel conventions, distortion model, moved cameras, label quality."""
    names = list(poses)
    by = {c.name: c for c in res.cameras}  # type: ignore[attr-defined]
    cams = [by[n] for n in names]
    pk = {n: poses[n].position.transpose("time", "keypoint", "individual", "space").values[:, :, 0] for n in names}
    conf = {n: poses[n].confidence.transpose("time", "keypoint", "individual").values[:, :, 0] for n in names}
    n_t, n_k = pk["mid"].shape[:2]
    kps = [str(k) for k in poses["mid"].keypoint.values]
    # the reference 3D points: mid + top, the two cameras whose labels agree
    ref = triangulate_points([by["mid"], by["top"]], np.stack([pk["mid"].reshape(-1, 2),
                                                               pk["top"].reshape(-1, 2)])).reshape(n_t, n_k, 3)

    def err(n: str, pts: np.ndarray, uv: np.ndarray) -> np.ndarray:
        return np.linalg.norm(by[n].project(pts.reshape(-1, 3)).reshape(uv.shape) - uv, axis=-1)

    out = []
    motion = float(np.nanmedian(np.linalg.norm(np.diff(ref, axis=0), axis=-1)))
    tt = np.arange(5, n_t - 5)
    rows = [[n] + [float(np.nanmedian(err(n, ref[tt], pk[n][tt + k]))) for k in range(-5, 6)] for n in ("back", "side")]
    out.append(f"**(a) frame offset.** The labels of back / side at frame t+k against the mid+top 3D points "
               f"at t (median px). The mouse hardly moves (median {motion:.2f} mm per frame), so this test has "
               "little power, but no offset helps:\n")
    out.append(_table(["camera"] + [f"k={k:+d}" for k in range(-5, 6)], rows))
    perms = []
    for perm in itertools.permutations(names):
        m = _median_reproj({c: poses[f] for c, f in zip(names, perm, strict=True)}, cams)
        perms.append([" ".join(perm)] + [m[n] for n in names])
    perms.sort(key=lambda r: max(r[1:]))
    out.append("\n\n**(b) camera order.** Label files assigned to the calibration's cameras in all 24 orders "
               "(median reprojection px per calibration camera; the 4 best orders):\n")
    out.append(_table(["label files for " + " ".join(names)] + names, perms[:4]))
    rows = []
    for n in ("back", "side"):
        w, h = by[n].size
        uv = pk[n]
        variants = {"as read": uv, "+0.5 px": uv + 0.5, "-0.5 px": uv - 0.5,
                    "y flipped": np.stack([uv[..., 0], h - 1 - uv[..., 1]], -1),
                    "x flipped": np.stack([w - 1 - uv[..., 0], uv[..., 1]], -1)}
        proj = by[n].project(ref.reshape(-1, 3))
        flat = uv.reshape(-1, 2)
        ok = np.isfinite(proj).all(1) & np.isfinite(flat).all(1)
        a = np.c_[flat[ok], np.ones(ok.sum())]
        m_aff, *_ = np.linalg.lstsq(a, proj[ok], rcond=None)  # the best 2D affine map (a resized image)
        rows.append([n] + [float(np.nanmedian(err(n, ref, v))) for v in variants.values()]
                    + [float(np.median(np.linalg.norm(a @ m_aff - proj[ok], axis=1)))])
    out.append("\n\n**(c) pixel conventions** (median px vs the mid+top 3D points; the last column lets a free "
               "2D affine map absorb any scaling / shift of the label image):\n")
    out.append(_table(["camera", "as read", "+0.5 px", "-0.5 px", "y flipped", "x flipped", "best affine"], rows))
    res_k3 = calibrate_cameras(dets, board, sizes, fix_k3=False)
    m0, m3 = _median_reproj(poses, cams), _median_reproj(poses, [c for n in names for c in res_k3.cameras
                                                                   if c.name == n])
    out.append("\n\n**(d) distortion model.** Board RMS and labels' median reprojection (px) with k3 fixed at 0 "
               "(default) and fitted:\n")
    out.append(_table(["camera", "board RMS k3=0", "board RMS k3 fitted", "labels k3=0", "labels k3 fitted"],
                      [[n, res.rms_px[n], res_k3.rms_px[n], m0[n], m3[n]] for n in names]))  # type: ignore[attr-defined]
    out.append("\n\n" + _moved_cameras(folder))
    out.append("\n" + residual_structure(poses, res))
    out.append("\n" + refinement_cross_validated(poses, res, dets, board))
    rows = []
    for n in names:
        e, c = err(n, ref, pk[n]).ravel(), conf[n].ravel()
        cells = []
        for lo, hi in ((0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)):
            sel = np.isfinite(e) & (c >= lo) & (c < hi)
            cells.append(f"{np.median(e[sel]):.1f} ({sel.sum()})" if sel.sum() else "-")
        rows.append([n, float(np.nanmedian(c))] + cells)
    out.append("\n\n**Label quality.** Median px between each camera's labels and the mid+top 3D points, by "
               "that camera's own label confidence (number of labels):\n")
    out.append(_table(["camera", "median confidence", "0.2-0.4", "0.4-0.6", "0.6-0.8", ">= 0.8"], rows))
    rows = [[n] + [float(np.nanmedian(err(n, ref, pk[n])[:, k])) for k in range(n_k)] for n in ("back", "side")]
    out.append("\n\nPer keypoint (median px vs the mid+top 3D points):\n")
    out.append(_table(["camera"] + kps, rows))
    return "\n".join(out) + "\n"


def _static_scene_shift(folder: Path, name: str, crop: tuple[int, int, int, int]) -> float:
    """px shift (ECC, translation) of a fixed part of the scene between a board image and the video."""
    import cv2

    x0, y0, x1, y1 = crop
    board_img = cv2.imread(str(sorted((folder / name / "calibration_images").glob("*.jpg"))[0]), cv2.IMREAD_GRAYSCALE)
    cap = cv2.VideoCapture(str(folder / name / f"minimal_{name}.mp4"))
    _, frame = cap.read()
    cap.release()
    clahe = cv2.createCLAHE(4.0, (8, 8))
    a, b = (cv2.GaussianBlur(clahe.apply(g[y0:y1, x0:x1]).astype(np.float32) / 255, (0, 0), 2)
            for g in (board_img, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))
    _, warp = cv2.findTransformECC(a, b, np.eye(2, 3, dtype=np.float32), cv2.MOTION_TRANSLATION,
                                   (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 300, 1e-7), None, 5)
    return float(np.hypot(*warp[:, 2]))


def _moved_cameras(folder: Path) -> str:
    """(e): did the cameras move between the board session and the filming?"""
    crops = {"back": (800, 0, 1280, 300), "side": (0, 820, 620, 1024), "top": (0, 780, 560, 1024)}
    shifts = {n: _static_scene_shift(folder, n, c) for n, c in crops.items()}
    return ("**(e) moved cameras.** A fixed part of the scene (screws, camera mounts) in a board image and in "
            "the video's first frame differ by " + ", ".join(f"{n} {v:.1f} px" for n, v in shifts.items())
            + " (ECC translation over a fixed crop).\n")


def residual_structure(poses: dict, res: object) -> str:
    """Is back's / side's error one shift of the camera, a smooth field over the image, or per keypoint?

    Residual = label minus the mid+top 3D point projected. Each model is fitted on frames 0-59 and
    scored on frames 60-119: one 2D shift per camera, an affine / quadratic field of image position
    (what a moved camera, refraction by a wall or an uncalibrated distortion would leave), and one
    constant offset per keypoint (what a label convention or a systematic label error leaves).
    """
    names = list(poses)
    by = {c.name: c for c in res.cameras}  # type: ignore[attr-defined]
    pk = {n: poses[n].position.transpose("time", "keypoint", "individual", "space").values[:, :, 0] for n in names}
    n_t, n_k = pk["mid"].shape[:2]
    ref = triangulate_points([by["mid"], by["top"]], np.stack([pk["mid"].reshape(-1, 2),
                                                               pk["top"].reshape(-1, 2)])).reshape(n_t, n_k, 3)
    fit, test = np.arange(n_t) < n_t // 2, np.arange(n_t) >= n_t // 2

    def med(r: np.ndarray) -> float:
        return float(np.nanmedian(np.linalg.norm(r, axis=-1)))

    def field(uv: np.ndarray, quad: bool) -> np.ndarray:
        cols = [uv, np.ones((len(uv), 1))] + ([uv**2, uv[:, :1] * uv[:, 1:]] if quad else [])
        return np.concatenate(cols, axis=1)

    rows = []
    warnings.simplefilter("ignore", RuntimeWarning)  # keypoints a camera never labels: NaN medians
    for n in ("back", "side"):
        proj = by[n].project(ref.reshape(-1, 3)).reshape(n_t, n_k, 2)
        r = pk[n] - proj
        spread = np.nanmedian(np.linalg.norm(r - np.nanmedian(r, axis=0), axis=-1), axis=0)  # per keypoint, over time
        uv_f, r_f = proj[fit].reshape(-1, 2), r[fit].reshape(-1, 2)
        ok = np.isfinite(uv_f).all(1) & np.isfinite(r_f).all(1)
        uv_t = np.nan_to_num(proj[test].reshape(-1, 2))
        cells = [med(r[test]), med(r[test] - np.nanmedian(r_f, axis=0))]
        for quad in (False, True):
            m, *_ = np.linalg.lstsq(field(uv_f[ok], quad), r_f[ok], rcond=None)
            cells.append(med(r[test].reshape(-1, 2) - field(uv_t, quad) @ m))
        cells.append(med(r[test] - np.nanmedian(r[fit], axis=0)))
        rows.append([n] + cells + [float(np.nanmedian(spread))])
    return ("**What the error is.** Residual = a camera's label minus the mid+top 3D point projected into it. "
            "Each model fitted on frames 0-59, median px left on frames 60-119 (last column: median over "
            "keypoints of each keypoint's own spread over time):\n\n"
            + _table(["camera", "residual", "minus one shift", "minus affine field of image position",
                      "minus quadratic field", "minus one offset per keypoint", "per-keypoint spread over time px"],
                     rows) + "\n")


def _aniposelib_refine(cams: list, p2: np.ndarray, only_extrinsics: bool) -> list | None:
    """aniposelib's CameraGroup.bundle_adjust_iter on the same points (all cameras free), or None."""
    try:
        import aniposelib.cameras as ac
    except ImportError:
        return None
    from pose.threed.cameras import Camera

    group = ac.CameraGroup([ac.Camera(name=c.name, size=c.size, matrix=c.matrix, dist=c.distortions,
                                      rvec=c.rotation, tvec=c.translation) for c in cams])
    np.random.seed(0)  # aniposelib samples points with numpy's global generator
    group.bundle_adjust_iter(p2.copy(), only_extrinsics=only_extrinsics, verbose=False)
    return [Camera(name=c.name, size=c.size, matrix=a.get_camera_matrix(), distortions=np.ravel(a.get_distortions()),
                   rotation=a.get_rotation(), translation=a.get_translation()) for c, a in zip(cams, group.cameras,
                                                                                                strict=True)]


def refinement_cross_validated(poses: dict, res: object, dets: dict, board: Board) -> str:
    """(f) anipose-style refinement on the labels: fitted on one half of the frames, scored on the other."""
    from pose.threed.refine import (
        board_observations,
        board_rms_px,
        cross_validate_refinement,
        label_reprojection_px,
        refine_calibration,
    )

    names = list(poses)
    cams = [c for n in names for c in res.cameras if c.name == n]  # type: ignore[attr-defined]
    p2 = np.stack([poses[n].position.transpose("time", "keypoint", "individual", "space").values[:, :, 0]
                   for n in names])  # (C, T, K, 2)
    w = np.stack([poses[n].confidence.transpose("time", "keypoint", "individual").values[:, :, 0] for n in names])
    c, n_t, n_k = p2.shape[:3]
    obs = board_observations(res, dets, board, names)  # type: ignore[arg-type]
    board0 = board_rms_px(cams, obs)
    variants = [("labels: back+side pose (mid+top fixed)", {}),
                ("labels: back+side pose + focal + k1", {"intrinsics": "focal_k1"}),
                ("board + labels jointly: back+side pose", {"board": obs})]
    rows = []
    for label, kw in variants:
        t0 = time.process_time()
        folds = cross_validate_refinement(cams, p2, w, **kw)
        cpu = (time.process_time() - t0) / len(folds)
        for f in folds:
            b = board_rms_px(f.refinement.cameras, obs)
            moved = ", ".join(f"{k} {v['moved_mm']:.0f} mm / {v['rotated_deg']:.1f} deg / f {v['focal_pct']:+.0f} %"
                              for k, v in f.refinement.changes.items())
            rows.append([label, f"{f.test[0]}-{f.test[1]}", f"{f.novelty_mm:.1f}"]
                        + [f"{f.before_px[n]:.2f} -> {f.after_px[n]:.2f}" for n in names]
                        + [" / ".join(f"{b[n]:.2f}" for n in names), moved, f"{cpu:.1f}"])
            print("|", " | ".join(map(str, rows[-1])), "|", flush=True)
    # aniposelib, the field's tool, on the same frames: its defaults (all cameras, pose + focal + k1)
    fit, test = np.arange(n_t // 2), np.arange(n_t // 2, n_t)
    t0 = time.process_time()
    new = _aniposelib_refine(cams, p2[:, fit].reshape(c, -1, 2), only_extrinsics=False)
    if new is not None:
        held = (p2[:, test].reshape(c, -1, 2), w[:, test].reshape(c, -1))
        bef, aft, b = label_reprojection_px(cams, *held), label_reprojection_px(new, *held), board_rms_px(new, obs)
        moved = ", ".join(f"{o.name} {np.linalg.norm(n_.centre - o.centre):.0f} mm / f "
                          f"{100 * (n_.matrix[0, 0] / o.matrix[0, 0] - 1):+.0f} %" for o, n_ in zip(cams, new, strict=True))
        rows.append(["aniposelib 0.8.0 bundle_adjust_iter (defaults: all cameras, pose + focal + k1)",
                     f"{test[0]}-{test[-1]}", "-"] + [f"{bef[n]:.2f} -> {aft[n]:.2f}" for n in names]
                    + [" / ".join(f"{b[n]:.2f}" for n in names), moved, f"{time.process_time() - t0:.1f}"])
        print("|", " | ".join(map(str, rows[-1])), "|", flush=True)
    # keypoints held out: the mouse hardly moves, so held-out frames repeat the fitted points; other keypoints do not
    rng = np.random.default_rng(1)
    for _ in range(2):
        kf = np.sort(rng.permutation(n_k)[: n_k // 2 + 1])
        kt = np.setdiff1d(np.arange(n_k), kf)
        ref = refine_calibration(cams, p2[:, :, kf].reshape(c, -1, 2), w[:, :, kf].reshape(c, -1))
        held = (p2[:, :, kt].reshape(c, -1, 2), w[:, :, kt].reshape(c, -1))
        bef, aft, b = label_reprojection_px(cams, *held), label_reprojection_px(ref.cameras, *held), board_rms_px(
            ref.cameras, obs)
        moved = ", ".join(f"{k} {v['moved_mm']:.0f} mm / {v['rotated_deg']:.1f} deg" for k, v in ref.changes.items())
        rows.append(["labels: back+side pose, keypoints held out", f"{len(kt)} keypoints", "-"]
                    + [f"{bef[n]:.2f} -> {aft[n]:.2f}" for n in names]
                    + [" / ".join(f"{b[n]:.2f}" for n in names), moved, "-"])
        print("|", " | ".join(map(str, rows[-1])), "|", flush=True)
    return ("**(f) refinement on the animal's own points, cross-validated** (`pose.threed.refine`, "
            "`ethopose pose refine-calibration`). Fitted on one contiguous half of the frames, scored on the other "
            "(median px of the held-out labels, triangulated from all four cameras, before -> after). Board RMS with "
            "the board poses re-fitted to the refined rig; before: "
            + " / ".join(f"{board0[n]:.2f}" for n in names) + " px. 'novelty': how far (mm, median over keypoints) "
            "the held-out half's points lie from the fitted half's: the mouse hardly moves, so held-out frames "
            "repeat the fitted points and the keypoint split is the harder test.\n\n"
            + _table(["refinement", "held out", "novelty mm"] + [f"{n} px" for n in names]
                     + ["board RMS px after (" + " / ".join(names) + ")", "cameras changed", "CPU s per fit"], rows)
            + "\n")


def _speed_bias(src: object, s_true: np.ndarray, sel: np.ndarray, p90: bool = False) -> float:
    """% difference of the body-centre speed (mean over ``sel``, or its 90th percentile) from the truth's."""
    s = compute_speed(src.position.sel(keypoint="body_center")).values.ravel()  # type: ignore[attr-defined]
    if p90:
        return 100 * (np.nanpercentile(s[sel], 90) / np.percentile(s_true[sel], 90) - 1)
    return 100 * (np.nanmean(s[sel]) / np.mean(s_true[sel]) - 1)


def run_virtual_rig(kind: str, n_cameras: int, seed: int, noises: tuple[float, ...], speeds: tuple[float, ...],
                    seconds: float = 60.0, n_views: int = 15) -> list[list[object]]:
    """Calibrate one rendered rig from board images, then triangulate + smooth over noise x speed."""
    from pose.threed.smoothing import smooth_points3d

    if kind == "checkerboard":
        board = Board(kind="checkerboard", board_x=9, board_y=6, square_length=20.0)
    else:
        board = Board(kind="charuco", board_x=8, board_y=6, square_length=25.0, marker_length=18.0, dict_size=50)
    rig = make_rig(n_cameras, seed=seed)
    views = render_board_views(board, rig, n_views=n_views, seed=seed + 1)
    dets = {c.name: {k: d for k, img in views.images[c.name].items()
                     if img is not None and (d := detect_board(img, board)) is not None} for c in rig}
    origin = sorted(set.intersection(*(set(v) for v in dets.values())))[0]
    res = calibrate_cameras(dets, board, {c.name: c.size for c in rig}, origin_frame=origin)
    r_b, t_b = rodrigues(views.poses[origin][0]), views.poses[origin][1]
    rows = []
    for speed_scale in speeds:
        truth = lift_to_3d(simulate_open_field(seconds, fps=30, seed=seed + 2, speed_scale=speed_scale))
        s_true = compute_speed(truth.position.sel(keypoint="body_center")).values.ravel()
        for noise_px in noises:
            t0 = time.process_time()
            poses = project_poses(truth, rig, noise_px=noise_px, seed=seed + 3)
            ds, _ = triangulate_poses(poses, res.cameras)
            sm = smooth_points3d(ds)  # in the calibration's world: position_std is per axis of it
            pos = {k: np.einsum("ij,tjkn->tikn", r_b, d.position.values) + t_b[None, :, None, None]
                   for k, d in (("raw", ds), ("kalman", sm))}
            err = {k: float(np.nanmedian(np.linalg.norm(v - truth.position.values, axis=1))) for k, v in pos.items()}
            ok = np.isfinite(s_true)
            fast = ok & (s_true > np.percentile(s_true[ok], 90))
            sg = filter_savgol(ds, window_s=0.5)
            rows.append([n_cameras, noise_px, speed_scale, seed, float(np.mean(s_true[ok])), err["raw"], err["kalman"],
                         float(ds["noise_px"].sel(keypoint="body_center")),
                         float(sm["process_noise"].sel(keypoint="body_center")),
                         _speed_bias(ds, s_true, ok), _speed_bias(sg, s_true, ok), _speed_bias(sm, s_true, ok),
                         _speed_bias(ds, s_true, fast), _speed_bias(sm, s_true, fast),
                         _speed_bias(sm, s_true, ok, p90=True), time.process_time() - t0])
    return rows


VIRTUAL_HEADER = ["cameras", "2D noise px", "speed scale", "seed", "true mean speed mm/s", "median 3D error mm raw",
                  "median 3D error mm Kalman", "noise px estimated", "process noise mm/s^2",
                  "mean speed bias % raw", "% savgol 0.5 s", "% Kalman (default)", "fast-frames bias % raw",
                  "fast-frames % Kalman", "p90 speed % Kalman", "CPU s"]


def bench_virtual(quick: bool) -> str:
    if quick:
        rows = run_virtual_rig("checkerboard", 3, 1, (1.0,), (1.0,))
    else:
        rows = []
        for n_cameras in (2, 3):
            for seed in (1, 2, 3):
                rows += run_virtual_rig("checkerboard", n_cameras, seed, (0.5, 1.0, 2.0), (0.5, 1.0, 2.0))
    worst = max(rows, key=lambda r: abs(r[11]))
    worst_fast = max(rows, key=lambda r: abs(r[13]))
    bar = [r for r in rows if r[0] == 3 and r[1] == 1.0 and r[2] == 1.0]
    summary = (f"\nBody-centre speed, Kalman (default path), over {len(rows)} cells: worst mean bias "
               f"{worst[11]:+.2f} % ({worst[0]} cameras, {worst[1]} px, speed x{worst[2]}, seed {worst[3]}); "
               f"worst fast-frames (truth > its 90th percentile) bias {worst_fast[13]:+.2f} % ({worst_fast[0]} "
               f"cameras, {worst_fast[1]} px, speed x{worst_fast[2]}, seed {worst_fast[3]}). The bar's cells "
               f"(3 cameras, 1 px, speed x1): " + ", ".join(f"seed {r[3]} {r[11]:+.2f} %" for r in bar) + ".\n")
    return _table(VIRTUAL_HEADER, rows) + "\n" + summary


SECTIONS = {"dlc": "## dlc-stereo (Bouguet reference)\n", "sleap": "## sleap-anipose-session (4 cameras, ChArUco)\n",
            "virtual": "## virtual mouse (board images -> calibration -> noisy 2D -> 3D)\n"}


def _splice(old: str, new_parts: dict[str, str]) -> str:
    """Replace the given sections (from their heading to the next '## ') in an existing results file."""
    for key, body in new_parts.items():
        head = SECTIONS[key]
        if head not in old:
            old += "\n" + head + body
            continue
        start = old.index(head)
        nxt = old.find("\n## ", start + len(head))
        old = old[:start] + head + body + ("\n" + old[nxt + 1:] if nxt >= 0 else "")
    return old


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the main virtual-mouse rig")
    ap.add_argument("--out", default=None, help="also write the tables to this markdown file")
    ap.add_argument("--sections", default="dlc,sleap,virtual",
                    help="comma-separated subset of dlc, sleap, virtual; with --out, only those sections of an "
                         "existing file are replaced")
    ap.add_argument("--aniposelib-path", action="append", default=[],
                    help="folder(s) holding aniposelib (and jax) for the comparison, e.g. a pip --target folder")
    args = ap.parse_args()
    import sys

    sys.path += args.aniposelib_path  # appended: the project's own numpy / OpenCV stay first
    run = {"dlc": bench_dlc_stereo, "sleap": bench_sleap_anipose, "virtual": lambda: bench_virtual(args.quick)}
    keys = [k.strip() for k in args.sections.split(",")]
    parts = {k: run[k]() for k in keys}
    text = "\n".join(SECTIONS[k] + parts[k] for k in keys)
    print(text)
    if args.out:
        from pose.atomic import write_text_atomic

        out = Path(args.out)
        if set(keys) != set(SECTIONS) and out.is_file():
            write_text_atomic(out, _splice(out.read_text(), parts))
        else:
            write_text_atomic(out, "# 3D calibration bench\n\n`python3 bench/calibration_3d.py`\n\n" + text)


if __name__ == "__main__":
    main()
