"""Multi-camera calibration from board detections: intrinsics, pairwise extrinsics, bundle adjustment.

Steps (:func:`calibrate_cameras`):

1. Intrinsics per camera (``cv2.calibrateCamera`` over that camera's views, distortion
   ``k1 k2 p1 p2`` with ``k3`` fixed at 0 by default, as Bouguet's toolbox); views whose
   reprojection error is far above the camera's median are rejected and the fit redone.
2. Pairwise extrinsics: for each camera pair, the relative pose from every frame both see
   (board pose in camera j times the inverse board pose in camera i), robustly averaged
   (the medoid rotation, the median translation). A maximum spanning tree over the number
   of shared frames chains every camera to the first one (the world frame).
3. Bundle adjustment (``scipy.optimize.least_squares``, Huber loss, sparse Jacobian) over
   all cameras' extrinsics, intrinsics and every board pose, on all shared detections.

Units follow the board's ``square_length`` (mm).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pose.threed.board import Board, Detection
from pose.threed.cameras import Camera, rodrigues, rotation_vector

logger = logging.getLogger(__name__)

MIN_CORNERS = 6
N_INTRINSIC = 9  # fx fy cx cy k1 k2 p1 p2 k3


class CalibrationError(RuntimeError):
    """Calibration cannot be done (e.g. a camera never saw the board); names the camera."""


@dataclass
class CalibrationResult:
    """Cameras and the diagnostics of a calibration.

    Attributes
    ----------
    cameras
        Calibrated cameras (world = the first camera's frame unless ``origin_frame``).
    rms_px
        Per camera: root mean square reprojection error (px, Euclidean per corner) after
        bundle adjustment.
    intrinsic_rms_px
        Per camera: the same after step 1 (single-camera fits).
    view_rms_px
        Per camera: ``{frame: rms_px}`` of every used view after bundle adjustment.
    used, rejected
        Per camera: the frames used, and ``{frame: reason}`` of those not used.
    shared_frames
        ``{"camA-camB": n}``: frames seen by both cameras.
    board_poses
        ``{frame: (rvec, tvec)}``: board to world after bundle adjustment.
    """

    cameras: list[Camera]
    rms_px: dict[str, float]
    intrinsic_rms_px: dict[str, float]
    view_rms_px: dict[str, dict[str, float]]
    used: dict[str, list[str]]
    rejected: dict[str, dict[str, str]]
    shared_frames: dict[str, int] = field(default_factory=dict)
    board_poses: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def board_points_world(self, board: Board, frame: str) -> np.ndarray:
        """``(n_corners, 3)`` world coordinates (mm) of the board's corners at ``frame``."""
        r, t = self.board_poses[frame]
        return board.object_points() @ rodrigues(r).T + t

    def metadata(self) -> dict[str, object]:
        """A TOML-friendly summary for the ``[metadata]`` table."""
        return {
            "software": "ethopose",
            "rms_px": {k: round(v, 4) for k, v in self.rms_px.items()},
            "intrinsic_rms_px": {k: round(v, 4) for k, v in self.intrinsic_rms_px.items()},
            "n_used": {k: len(v) for k, v in self.used.items()},
            "n_rejected": {k: len(v) for k, v in self.rejected.items()},
            "shared_frames": dict(self.shared_frames),
            **({"floor_board": self.board_plane()} if self.board_poses else {}),
        }

    def board_plane(self, frame: str | None = None) -> dict[str, object]:
        """The board's plane at ``frame`` (default: its first view) in the world: a point
        (the board's origin corner, mm) and the unit normal on the cameras' side.

        Written to ``[metadata.floor_board]``: lay the board flat on the floor in that view
        and ``--floor board:calibration.toml`` uses it (the board's thickness is not known:
        heights are above its printed surface).
        """
        key = frame if frame is not None else next(iter(self.board_poses))
        r, t = self.board_poses[key]
        normal = rodrigues(r)[:, 2]
        centres = np.array([c.centre for c in self.cameras])
        if np.mean((centres - t) @ normal) < 0:
            normal = -normal
        return {"view": str(key), "point_mm": [float(v) for v in t], "normal": [float(v) for v in normal]}


def _valid_view(det: Detection, board: Board) -> str | None:
    """Why a detection cannot be used, or None."""
    if len(det.ids) < MIN_CORNERS:
        return f"only {len(det.ids)} corners (< {MIN_CORNERS})"
    obj = board.object_points()[det.ids, :2]
    sv = np.linalg.svd(obj - obj.mean(0), compute_uv=False)
    if sv[1] < 1e-6 * max(sv[0], 1e-12) or sv[1] < 0.5 * board.square_length:
        return "corners on one line"
    return None


def _calibrate_intrinsics(
    name: str, dets: Mapping[str, Detection], board: Board, size: tuple[int, int], flags: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]], dict[str, float]]:
    import cv2

    obj_all = board.object_points()
    keys = list(dets)
    obj = [obj_all[dets[k].ids].astype(np.float32) for k in keys]
    img = [dets[k].image_points.astype(np.float32).reshape(-1, 1, 2) for k in keys]
    if board.kind == "charuco" or any(len(d.ids) < board.n_corners for d in dets.values()):
        # non-planar-grid views need a starting camera matrix
        f0 = float(max(size))
        k0 = np.array([[f0, 0, (size[0] - 1) / 2], [0, f0, (size[1] - 1) / 2], [0, 0, 1]])
        flags |= cv2.CALIB_USE_INTRINSIC_GUESS
    else:
        k0 = None
    _, k, d, rvecs, tvecs = cv2.calibrateCamera(obj, img, size, k0, None, flags=flags)
    poses, errs = {}, {}
    for key, o, i, r, t in zip(keys, obj, img, rvecs, tvecs, strict=True):
        proj, _ = cv2.projectPoints(o, r, t, k, d)
        errs[key] = float(np.sqrt(((proj.reshape(-1, 2) - i.reshape(-1, 2)) ** 2).sum(1).mean()))
        poses[key] = (np.asarray(r, float).ravel(), np.asarray(t, float).ravel())
    return k, np.asarray(d, float).ravel()[:5], poses, errs


def _relative_pose(pa: tuple[np.ndarray, np.ndarray], pb: tuple[np.ndarray, np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Pose of camera b relative to camera a from the board's pose in each: (R_ab, t_ab)."""
    ra, rb = rodrigues(pa[0]), rodrigues(pb[0])
    r = rb @ ra.T
    return r, pb[1] - r @ pa[1]


def _robust_pose(rs: list[np.ndarray], ts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Medoid rotation (least summed angle to the others) and median translation."""
    rs_arr = np.stack(rs)
    cos = (np.einsum("aij,bij->ab", rs_arr, rs_arr) - 1) / 2
    ang = np.arccos(np.clip(cos, -1, 1))
    best = int(np.argmin(ang.sum(1)))
    return rs_arr[best], np.median(np.stack(ts), axis=0)


def _initial_extrinsics(names: Sequence[str], poses: Mapping[str, Mapping[str, tuple]]
                        ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, int]]:
    """World (= first camera) to camera poses by a maximum spanning tree of shared frames."""
    shared: dict[tuple[str, str], list[str]] = {}
    counts: dict[str, int] = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            common = sorted(set(poses[a]) & set(poses[b]))
            shared[(a, b)] = common
            counts[f"{a}-{b}"] = len(common)
    ext = {names[0]: (np.eye(3), np.zeros(3))}
    while len(ext) < len(names):
        best = None
        for (a, b), common in shared.items():
            if (a in ext) == (b in ext) or not common:
                continue
            if best is None or len(common) > len(shared[best]):
                best = (a, b)
        if best is None:
            lost = [n for n in names if n not in ext]
            raise CalibrationError(
                f"camera(s) {lost} share no board view with camera(s) {sorted(ext)}: "
                "film the board where both see it"
            )
        a, b = best
        src, dst = (a, b) if a in ext else (b, a)
        pairs = [_relative_pose(poses[src][k], poses[dst][k]) for k in shared[best]]
        r_rel, t_rel = _robust_pose([p[0] for p in pairs], [p[1] for p in pairs])
        r_src, t_src = ext[src]
        ext[dst] = (r_rel @ r_src, r_rel @ t_src + t_rel)
        logger.info("extrinsics: %s from %s over %d shared frames", dst, src, len(shared[best]))
    return ext, counts


def _project(intr: np.ndarray, r_cam: np.ndarray, t_cam: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Vectorised projection: per-point intrinsics (M, 9), rotations (M, 3, 3), t (M, 3)."""
    xc = np.einsum("mij,mj->mi", r_cam, points) + t_cam
    xy = xc[:, :2] / xc[:, 2:3]
    x, y = xy[:, 0], xy[:, 1]
    fx, fy, cx, cy, k1, k2, p1, p2, k3 = intr.T
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([fx * xd + cx, fy * yd + cy], axis=1)


@dataclass
class _Problem:
    names: list[str]
    frames: list[str]
    cam_idx: np.ndarray  # (M,) observation camera
    frame_idx: np.ndarray  # (M,) observation frame
    obj: np.ndarray  # (M, 3)
    img: np.ndarray  # (M, 2)
    free_intr: np.ndarray  # (9,) bool: intrinsic entries refined


def _unpack(p: np.ndarray, prob: _Problem, intr0: np.ndarray):
    n_cam = len(prob.names)
    n_free = int(prob.free_intr.sum())
    per_cam = 6 + n_free
    cams = p[: n_cam * per_cam].reshape(n_cam, per_cam)
    boards = p[n_cam * per_cam:].reshape(-1, 6)
    intr = intr0.copy()
    intr[:, prob.free_intr] = cams[:, 6:]
    return cams[:, :3], cams[:, 3:6], intr, boards[:, :3], boards[:, 3:]


def _residuals(p: np.ndarray, prob: _Problem, intr0: np.ndarray) -> np.ndarray:
    cr, ct, intr, br, bt = _unpack(p, prob, intr0)
    rb = rodrigues(br)[prob.frame_idx]
    xw = np.einsum("mij,mj->mi", rb, prob.obj) + bt[prob.frame_idx]
    proj = _project(intr[prob.cam_idx], rodrigues(cr)[prob.cam_idx], ct[prob.cam_idx], xw)
    return (proj - prob.img).ravel()


def _sparsity(prob: _Problem, n_params: int):
    from scipy.sparse import lil_matrix

    n_cam = len(prob.names)
    per_cam = 6 + int(prob.free_intr.sum())
    m = len(prob.cam_idx)
    sp = lil_matrix((2 * m, n_params), dtype=np.int8)
    rows = np.arange(m)
    for r in (2 * rows, 2 * rows + 1):
        for j in range(per_cam):
            sp[r, prob.cam_idx * per_cam + j] = 1
        for j in range(6):
            sp[r, n_cam * per_cam + prob.frame_idx * 6 + j] = 1
    # the world frame is fixed: the first camera's extrinsics have no effect
    sp[:, :6] = 0
    return sp


def _robust_cost(res: np.ndarray, f_scale_px: float) -> tuple[float, np.ndarray]:
    """Huber cost over per-corner residual norms and the IRLS weight of each residual entry."""
    norm = np.linalg.norm(res.reshape(-1, 2), axis=1)
    cost = np.where(norm <= f_scale_px, norm**2, 2 * f_scale_px * norm - f_scale_px**2).sum()
    w = np.where(norm <= f_scale_px, 1.0, f_scale_px / np.maximum(norm, 1e-12))
    return float(cost), np.repeat(w, 2)


def _bundle_adjust(prob: _Problem, intr0: np.ndarray, ext: Mapping[str, tuple], board_pose: np.ndarray,
                   f_scale_px: float, max_iter: int = 50) -> np.ndarray:
    """Levenberg-Marquardt with Huber (IRLS) weights on the normal equations.

    The Jacobian is sparse (each corner depends on one camera and one board pose) and is
    taken by finite differences over independent column groups (~20 residual evaluations);
    the normal matrix is small (parameters x parameters), so each step costs milliseconds,
    unlike an SVD of the tall Jacobian.
    """
    from scipy.optimize._numdiff import approx_derivative, group_columns
    from scipy.sparse import diags

    cams = []
    for i, n in enumerate(prob.names):
        r, t = ext[n]
        cams.append(np.concatenate([rotation_vector(r), t, intr0[i, prob.free_intr]]))
    p = np.concatenate([np.concatenate(cams), board_pose.ravel()])
    sp = _sparsity(prob, p.size)
    groups = group_columns(sp)
    res = _residuals(p, prob, intr0)
    cost, w = _robust_cost(res, f_scale_px)
    lam = 1e-3
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - the count is logged
        jac = approx_derivative(_residuals, p, args=(prob, intr0), sparsity=(sp, groups))
        jw = diags(np.sqrt(w)) @ jac
        h = (jw.T @ jw).toarray()
        g = jw.T @ (np.sqrt(w) * res)
        d = np.diag(h).copy()
        d[d <= 0] = 1.0  # the fixed world frame (first camera's pose) has no effect
        improved = False
        for _ in range(20):
            step = np.linalg.solve(h + lam * np.diag(d) + 1e-12 * np.eye(len(d)), -g)
            p_new = p + step
            res_new = _residuals(p_new, prob, intr0)
            cost_new, w_new = _robust_cost(res_new, f_scale_px)
            if np.isfinite(cost_new) and cost_new < cost:
                improved = True
                break
            lam *= 4.0
        if not improved:
            break
        rel = (cost - cost_new) / max(cost, 1e-12)
        p, res, cost, w = p_new, res_new, cost_new, w_new
        lam = max(lam / 3.0, 1e-9)
        if rel < 1e-6:
            break
    logger.info("bundle adjustment: %d iterations, RMS %.4f px", n_iter,
                float(np.sqrt(np.mean(np.sum(res.reshape(-1, 2) ** 2, axis=1)))))
    return p


def calibrate_cameras(
    detections: Mapping[str, Mapping[str, Detection]],
    board: Board,
    sizes: Mapping[str, tuple[int, int]],
    *,
    fix_k3: bool = True,
    refine_intrinsics: bool = True,
    outlier_factor: float = 4.0,
    origin_frame: str | None = None,
) -> CalibrationResult:
    """Calibrate cameras from board detections (see the module docstring for the steps).

    Parameters
    ----------
    detections
        ``{camera: {frame: Detection}}``; the same frame key in two cameras means the
        same (synchronised) instant.
    board
        The board.
    sizes
        ``{camera: (width, height)}`` in px.
    fix_k3
        Keep the sixth-order radial term at 0 (Bouguet's default; it overfits with few views).
    refine_intrinsics
        Refine intrinsics in the bundle adjustment too (else only poses).
    outlier_factor
        A view whose error exceeds ``max(1 px, outlier_factor * median view error)`` of
        its camera is rejected.
    origin_frame
        A frame key: put the world on the board at that frame (x, y on the board, z its
        normal) instead of the first camera.

    Raises
    ------
    CalibrationError
        A camera with fewer than 3 usable views, or cameras sharing no view; the message
        names the camera.
    """
    import cv2

    names = list(detections)
    obj_all = board.object_points()
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
    rejected: dict[str, dict[str, str]] = {n: {} for n in names}
    intr0 = np.zeros((len(names), N_INTRINSIC))
    poses: dict[str, dict[str, tuple]] = {}
    intr_rms: dict[str, float] = {}
    for ci, name in enumerate(names):
        dets = {}
        for key, det in detections[name].items():
            why = _valid_view(det, board)
            if why:
                rejected[name][key] = why
            else:
                dets[key] = det
        for _ in range(2):
            if len(dets) < 3:
                raise CalibrationError(
                    f"camera {name!r}: only {len(dets)} usable board view(s) (need >= 3); "
                    f"rejected: {rejected[name] or 'none'}"
                )
            k, d, p, errs = _calibrate_intrinsics(name, dets, board, sizes[name], flags)
            limit = max(1.0, outlier_factor * float(np.median(list(errs.values()))))
            bad = [key for key, e in errs.items() if e > limit]
            if not bad:
                break
            for key in bad:
                rejected[name][key] = f"view error {errs[key]:.2f} px > {limit:.2f} px"
                dets.pop(key)
        intr0[ci] = [k[0, 0], k[1, 1], k[0, 2], k[1, 2], *d]
        poses[name] = p
        intr_rms[name] = float(np.sqrt(np.mean([e**2 for key, e in errs.items() if key in dets])))
        logger.info("camera %s: %d views, single-camera RMS %.3f px", name, len(dets), intr_rms[name])
    ext, counts = _initial_extrinsics(names, poses)

    frames = sorted({k for n in names for k in poses[n]})
    f_index = {k: i for i, k in enumerate(frames)}
    board_pose = np.zeros((len(frames), 6))
    for key in frames:  # board in world from the camera with most corners in that frame
        cam = max((n for n in names if key in poses[n]), key=lambda n: len(detections[n][key].ids))
        r_b, t_b = rodrigues(poses[cam][key][0]), poses[cam][key][1]
        r_c, t_c = ext[cam]
        board_pose[f_index[key]] = np.concatenate([rotation_vector(r_c.T @ r_b), r_c.T @ (t_b - t_c)])
    ci_l, fi_l, obj_l, img_l = [], [], [], []
    for ci, name in enumerate(names):
        for key in poses[name]:
            det = detections[name][key]
            ci_l.append(np.full(len(det.ids), ci))
            fi_l.append(np.full(len(det.ids), f_index[key]))
            obj_l.append(obj_all[det.ids])
            img_l.append(det.image_points)
    free = np.ones(N_INTRINSIC, bool) if refine_intrinsics else np.zeros(N_INTRINSIC, bool)
    free[8] = refine_intrinsics and not fix_k3
    prob = _Problem(names, frames, np.concatenate(ci_l), np.concatenate(fi_l), np.concatenate(obj_l),
                    np.concatenate(img_l), free)
    p = _bundle_adjust(prob, intr0, ext, board_pose, f_scale_px=1.0)
    cr, ct, intr, br, bt = _unpack(p, prob, intr0)
    err = np.linalg.norm(_residuals(p, prob, intr0).reshape(-1, 2), axis=1)

    if origin_frame is not None:
        if origin_frame not in f_index:
            raise CalibrationError(f"origin frame {origin_frame!r} is not a used board view")
        rb, tb = rodrigues(br[f_index[origin_frame]]), bt[f_index[origin_frame]]
    else:
        rb, tb = np.eye(3), np.zeros(3)
    cameras, rms, view_rms, used = [], {}, {}, {}
    for ci, name in enumerate(names):
        rc = rodrigues(cr[ci])
        fx, fy, cx, cy = intr[ci, :4]
        cameras.append(Camera(
            name=name, size=sizes[name], matrix=np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]),
            distortions=intr[ci, 4:], rotation=rotation_vector(rc @ rb), translation=rc @ tb + ct[ci],
        ))
        mask = prob.cam_idx == ci
        rms[name] = float(np.sqrt(np.mean(err[mask] ** 2)))
        view_rms[name] = {}
        for key in poses[name]:
            m = mask & (prob.frame_idx == f_index[key])
            view_rms[name][key] = float(np.sqrt(np.mean(err[m] ** 2)))
        used[name] = sorted(poses[name])
        logger.info("camera %s: bundle-adjusted RMS %.3f px over %d views", name, rms[name], len(used[name]))
    r_inv = rb.T
    board_poses = {}
    for key, i in f_index.items():  # board poses in the (possibly moved) world frame
        r_w = r_inv @ rodrigues(br[i])
        board_poses[key] = (rotation_vector(r_w), r_inv @ (bt[i] - tb))
    return CalibrationResult(cameras, rms, intr_rms, view_rms, used, rejected, counts, board_poses)
