"""Refine a calibration on the animal's own 2D points (anipose ``calibrate --animal``).

A board calibration can miss the geometry the animal is filmed through (a camera nudged
after the board session, a cage wall between camera and animal). Anipose's remedy
(aniposelib ``CameraGroup.bundle_adjust_iter``) is a bundle adjustment on the animal's
keypoints: every labelled keypoint seen by two or more cameras is one unknown 3D point,
and the cameras' extrinsics (optionally focal length and ``k1``) move so that the labels
reproject onto those points. :func:`refine_calibration` does the same with a robust
(soft-L1) loss weighted by confidence, and with an explicit gauge: the cameras that are
not refined stay fixed; with fewer than two fixed cameras the world is also pinned (the
first camera's pose, and the mean distance of the refined cameras' centres to it, so the
scale cannot drift).

Caveats (Notes of :func:`refine_calibration`): label errors that are consistent over
frames (a keypoint placed on the flank in one camera and on the back in another) are
absorbed into the cameras; judge a refinement on frames and keypoints it was not fitted
on (:func:`label_reprojection_px`), and on the board it no longer fits as well.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pose.threed.board import Board, Detection
from pose.threed.calibration import CalibrationResult
from pose.threed.cameras import Camera, rodrigues, rotation_vector
from pose.threed.triangulation import reprojection_errors, triangulate_robust

logger = logging.getLogger(__name__)

IntrinsicsMode = Literal["none", "focal", "focal_k1"]
_N_INTR = {"none": 0, "focal": 1, "focal_k1": 2}


class RefinementError(ValueError):
    """Points or options a refinement cannot use; the message names the camera."""


@dataclass
class BoardObservations:
    """Board corners seen by the cameras, to keep in a refinement or to score a rig on.

    Attributes
    ----------
    object_points
        ``(M, 3)`` corner positions on the board (mm, board frame).
    image_points
        ``(M, 2)`` detected corners (px).
    camera, view
        ``(M,)`` camera index (in the cameras' order) and board-view index of each corner.
    poses
        ``(V, 6)`` board-to-world Rodrigues vector and translation of each view (mm).
    """

    object_points: np.ndarray
    image_points: np.ndarray
    camera: np.ndarray
    view: np.ndarray
    poses: np.ndarray


def board_observations(result: CalibrationResult, detections: Mapping[str, Mapping[str, Detection]],
                       board: Board, names: Sequence[str]) -> BoardObservations:
    """The used board detections of a calibration, with its bundle-adjusted board poses, for ``names``."""
    frames = sorted(result.board_poses)
    index = {k: i for i, k in enumerate(frames)}
    obj_all = board.object_points()
    obj, img, cam, view = [], [], [], []
    for ci, name in enumerate(names):
        for key in result.used.get(name, []):
            det = detections[name][key]
            obj.append(obj_all[det.ids])
            img.append(det.image_points)
            cam.append(np.full(len(det.ids), ci))
            view.append(np.full(len(det.ids), index[key]))
    poses = np.stack([np.r_[result.board_poses[k][0], result.board_poses[k][1]] for k in frames])
    return BoardObservations(np.concatenate(obj), np.concatenate(img), np.concatenate(cam),
                             np.concatenate(view), poses)


def _board_residuals(cameras: Sequence[Camera], obs: BoardObservations, poses: np.ndarray) -> np.ndarray:
    """``(M, 2)`` projected minus detected corners for board poses ``(V, 6)``."""
    xw = np.einsum("mij,mj->mi", rodrigues(poses[:, :3])[obs.view], obs.object_points) + poses[obs.view, 3:]
    out = np.empty((len(xw), 2))
    for c, cam in enumerate(cameras):
        m = obs.camera == c
        out[m] = cam.project(xw[m]) - obs.image_points[m]
    return out


def board_rms_px(cameras: Sequence[Camera], obs: BoardObservations, *, refit_poses: bool = True) -> dict[str, float]:
    """Per camera RMS (px) of the board corners; with ``refit_poses`` the board poses are re-fitted to these cameras.

    Re-fitting is the fair score of a changed rig: each board view moves to where all the
    given cameras together see it best (Huber 1 px), so the RMS shows only what no board
    pose can reconcile.
    """
    from scipy.optimize import least_squares

    poses = obs.poses.copy()
    if refit_poses:
        for v in range(len(poses)):
            m = obs.view == v
            sub = BoardObservations(obs.object_points[m], obs.image_points[m], obs.camera[m],
                                    np.zeros(int(m.sum()), int), poses[v:v + 1])
            sol = least_squares(lambda p, s=sub: np.nan_to_num(_board_residuals(cameras, s, p[None]), nan=1e3).ravel(),
                                poses[v],
                                loss="huber", f_scale=1.0, x_scale="jac")
            poses[v] = sol.x
    err = np.linalg.norm(np.nan_to_num(_board_residuals(cameras, obs, poses), nan=1e3), axis=1)  # behind: 1000 px
    return {c.name: float(np.sqrt(np.mean(err[obs.camera == i] ** 2))) for i, c in enumerate(cameras)
            if (obs.camera == i).any()}


@dataclass
class Refinement:
    """Result of :func:`refine_calibration`.

    Attributes
    ----------
    cameras
        All cameras, the refined ones replaced.
    refined
        Names of the refined cameras.
    intrinsics
        What was refined besides the pose: ``"none"``, ``"focal"`` or ``"focal_k1"``.
    f_scale_px
        The robust loss's scale (px): residuals beyond it count less than squared.
    n_points
        3D points (labelled keypoint instants) fitted.
    median_px_before, median_px_after
        Per camera: median reprojection (px) of the fitted labels, triangulated from all
        cameras, before and after.
    changes
        Per refined camera: ``moved_mm`` (centre), ``rotated_deg``, ``focal_pct``, ``k1``
        (the change in k1).
    """

    cameras: list[Camera]
    refined: list[str]
    intrinsics: str
    f_scale_px: float
    n_points: int
    median_px_before: dict[str, float]
    median_px_after: dict[str, float]
    changes: dict[str, dict[str, float]]

    def summary(self) -> str:
        """One line per refined camera: what moved and by how much, and the label error."""
        lines = [f"refined {', '.join(self.refined)} ({'pose' if self.intrinsics == 'none' else 'pose + ' + self.intrinsics})"
                 f" on {self.n_points} labelled points, robust scale {self.f_scale_px:.2f} px"]
        for name in self.median_px_before:
            ch = self.changes.get(name)
            what = (f"moved {ch['moved_mm']:.1f} mm, rotated {ch['rotated_deg']:.2f} deg, focal {ch['focal_pct']:+.2f} %, "
                    f"k1 {ch['k1']:+.4f}; " if ch else "fixed; ")
            lines.append(f"  {name}: {what}labels median {self.median_px_before[name]:.2f} -> "
                         f"{self.median_px_after[name]:.2f} px")
        return "\n".join(lines)


def label_reprojection_px(cameras: Sequence[Camera], points2d: np.ndarray, weights: np.ndarray | None = None
                          ) -> dict[str, float]:
    """Median px between each camera's labels and their 3D points reprojected (all cameras triangulated).

    Parameters
    ----------
    cameras
        ``C`` cameras.
    points2d
        ``(C, N, 2)`` labels (px); NaN where unlabelled.
    weights
        ``(C, N)`` confidence (0 drops a label from the triangulation; it is still scored).

    Returns
    -------
    dict
        ``{camera: median px}`` over that camera's labels whose point was triangulated
        (the robust triangulation of :func:`pose.threed.triangulation.triangulate_robust`).
    """
    tri = triangulate_robust(cameras, points2d, weights)
    err = reprojection_errors(cameras, tri.points3d, points2d)
    return {c.name: float(np.nanmedian(err[i])) if np.isfinite(err[i]).any() else float("nan")
            for i, c in enumerate(cameras)}


def pair_agreement_px(cameras: Sequence[Camera], points2d: np.ndarray, weights: np.ndarray | None = None
                      ) -> dict[tuple[str, str], float]:
    """Per camera pair: the median reprojection (px) of its own labels triangulated from that pair alone.

    Two cameras always fit their own labels along the epipolar line, so only the error
    across it shows; a pair with a wrong camera (or labels that disagree) scores high.
    """
    from itertools import combinations

    from pose.threed.triangulation import triangulate_points

    points2d = np.asarray(points2d, dtype=float)
    out = {}
    for a, b in combinations(range(len(cameras)), 2):
        pair = [cameras[a], cameras[b]]
        wp = None if weights is None else np.asarray(weights, float)[[a, b]]
        pts = triangulate_points(pair, points2d[[a, b]], wp)
        err = reprojection_errors(pair, pts, points2d[[a, b]])
        out[(cameras[a].name, cameras[b].name)] = float(np.nanmedian(err)) if np.isfinite(err).any() else np.inf
    return out


def select_cameras_to_refine(cameras: Sequence[Camera], points2d: np.ndarray, weights: np.ndarray | None = None
                             ) -> list[str]:
    """All cameras but the pair whose labels agree best (:func:`pair_agreement_px`): that pair is the gauge.

    Raises
    ------
    RefinementError
        Fewer than three cameras: there is no way to tell which camera is off (name them).
    """
    if len(cameras) < 3:
        raise RefinementError(f"cameras {[c.name for c in cameras]}: with two cameras the data cannot tell which "
                              "one is off; name the cameras to refine")
    agree = pair_agreement_px(cameras, points2d, weights)
    best = min(agree, key=agree.get)
    logger.info("pair agreement (px): %s; %s+%s agree best and stay fixed",
                ", ".join(f"{a}+{b} {v:.2f}" for (a, b), v in agree.items()), *best)
    return [c.name for c in cameras if c.name not in best]


def _apply(cam: Camera, p: np.ndarray, intrinsics: str) -> Camera:
    matrix, dist = cam.matrix, cam.distortions
    if intrinsics != "none":
        s = float(np.exp(p[6]))
        matrix = cam.matrix.copy()
        matrix[0, 0] *= s
        matrix[1, 1] *= s
        if intrinsics == "focal_k1":
            dist = cam.distortions.copy()
            dist[0] += p[7]
    return dataclasses.replace(cam, rotation=p[:3], translation=p[3:6], matrix=matrix, distortions=dist)


def refine_calibration(
    cameras: Sequence[Camera],
    points2d: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    refine: Sequence[str] | None = None,
    intrinsics: IntrinsicsMode = "none",
    f_scale_px: float | None = None,
    max_points: int = 1500,
    max_nfev: int = 100,
    seed: int = 0,
    board: BoardObservations | None = None,
) -> Refinement:
    """Bundle-adjust cameras on labelled keypoints (anipose ``calibrate --animal``).

    Parameters
    ----------
    cameras
        The ``C`` board-calibrated cameras.
    points2d
        ``(C, N, 2)`` labels (px): the same keypoint at the same instant in every camera;
        NaN where unlabelled.
    weights
        ``(C, N)`` confidence; 0 drops a label. Default 1.
    refine
        Names of the cameras to refine; default :func:`select_cameras_to_refine` (all but
        the camera pair whose labels agree best), logged.
    intrinsics
        Also refine the focal length (one scale of fx, fy) or the focal length and ``k1``.
    f_scale_px
        Soft-L1 scale. Default: 3x the median reprojection of the fixed cameras' labels
        triangulated from those cameras alone (their label noise), at least 1 px; logged.
    max_points
        At most this many points are fitted (a random subset, ``seed``), as aniposelib does.
    max_nfev
        Function evaluations of ``scipy.optimize.least_squares``.
    board
        Keep these board corners in the adjustment (their board poses free too): the
        cameras must then fit the board and the animal at once (a joint adjustment).

    Returns
    -------
    Refinement

    Raises
    ------
    RefinementError
        An unknown camera name, or fewer than 10 points seen by two cameras.

    Notes
    -----
    A camera pose changes the image by a smooth field (a homography plus parallax). Label
    offsets that differ from keypoint to keypoint (label definition or systematic label
    error) cannot be such a field; the refinement then trades some keypoints against
    others and the cameras move by what the board fit contradicts. Cross-validate.
    """
    from scipy.optimize import least_squares
    from scipy.sparse import lil_matrix

    names = [c.name for c in cameras]
    points2d = np.asarray(points2d, dtype=float)
    w = np.ones(points2d.shape[:2]) if weights is None else np.nan_to_num(np.asarray(weights, float), nan=1.0)
    before = label_reprojection_px(cameras, points2d, w)
    if refine is None:
        refine = select_cameras_to_refine(cameras, points2d, w)
    unknown = [n for n in refine if n not in names]
    if unknown:
        raise RefinementError(f"camera(s) {unknown} to refine are not in the calibration ({names})")
    if not refine:
        raise RefinementError("no camera to refine")
    free = [names.index(n) for n in refine]
    fixed = [i for i in range(len(names)) if i not in free]
    pin_first = not fixed  # every camera refined: pin the first camera's pose
    scale_gauge = len(fixed) < 2
    seen = np.isfinite(points2d).all(-1) & (w > 0)
    tri = triangulate_robust(cameras, points2d, w)
    ok = np.flatnonzero((seen.sum(0) >= 2) & np.isfinite(tri.points3d).all(1))
    if ok.size < 10:
        raise RefinementError(f"only {ok.size} points are labelled in two or more cameras (need >= 10)")
    rng = np.random.default_rng(seed)
    if ok.size > max_points:
        ok = np.sort(rng.choice(ok, max_points, replace=False))
    x0 = tri.points3d[ok]
    err0 = reprojection_errors(cameras, x0, points2d[:, ok])
    if f_scale_px is None:  # the label noise where the calibration is trusted
        if len(fixed) >= 2:
            own = [cameras[i] for i in fixed]
            ref_err = reprojection_errors(own, triangulate_robust(own, points2d[fixed][:, ok], w[fixed][:, ok]).points3d,
                                          points2d[fixed][:, ok])
        else:
            ref_err = err0
        f_scale_px = max(1.0, 3.0 * float(np.nanmedian(ref_err)))
        logger.info("robust scale %.2f px (3x the median reprojection of the fixed cameras' labels triangulated "
                    "from them alone, >= 1 px)", f_scale_px)
    ci, pi = np.nonzero(seen[:, ok])
    uv = points2d[ci, ok[pi]]
    sw = np.sqrt(w[ci, ok[pi]])
    n_intr = _N_INTR[intrinsics]
    per = 6 + n_intr
    p_cams = np.concatenate([np.r_[cameras[i].rotation, cameras[i].translation, np.zeros(n_intr)] for i in free])
    n_cam_p = p_cams.size
    centre0 = cameras[fixed[0] if fixed else 0].centre
    dist0 = np.mean([np.linalg.norm(cameras[i].centre - centre0) for i in free
                     if not (pin_first and i == 0)] or [1.0])
    scale_w = 100.0 * np.sqrt(len(ci))

    def unpack(p: np.ndarray) -> tuple[list[Camera], np.ndarray]:
        cams = list(cameras)
        for j, i in enumerate(free):
            q = p[per * j:per * (j + 1)].copy()
            if pin_first and i == 0:
                q[:6] = np.r_[cameras[0].rotation, cameras[0].translation]
            cams[i] = _apply(cameras[i], q, intrinsics)
        return cams, p[n_cam_p:n_cam_p + 3 * len(x0)].reshape(-1, 3)

    n_pt_p = 3 * len(x0)
    n_board = 0 if board is None else len(board.camera)

    def resid(p: np.ndarray) -> np.ndarray:
        cams, x = unpack(p)
        r = np.empty((len(ci), 2))
        for c in range(len(cams)):
            m = ci == c
            r[m] = cams[c].project(x[pi[m]]) - uv[m]
        out = (np.nan_to_num(r, nan=1e3) * sw[:, None]).ravel()
        if board is not None:
            rb = _board_residuals(cams, board, p[n_cam_p + n_pt_p:].reshape(-1, 6))
            out = np.r_[out, np.nan_to_num(rb, nan=1e3).ravel()]
        if scale_gauge:
            d = np.mean([np.linalg.norm(cams[i].centre - centre0) for i in free if not (pin_first and i == 0)]
                        or [dist0])
            out = np.r_[out, scale_w * (d / dist0 - 1.0)]
        return out

    n_res = 2 * len(ci) + 2 * n_board + int(scale_gauge)
    n_board_p = 0 if board is None else board.poses.size
    sparsity = lil_matrix((n_res, n_cam_p + n_pt_p + n_board_p), dtype=np.int8)
    rows = np.arange(len(ci))
    for j, i in enumerate(free):
        r = rows[ci == i]
        for k in range(per):
            sparsity[2 * r, per * j + k] = 1
            sparsity[2 * r + 1, per * j + k] = 1
    for k in range(3):
        sparsity[2 * rows, n_cam_p + 3 * pi + k] = 1
        sparsity[2 * rows + 1, n_cam_p + 3 * pi + k] = 1
    p0 = np.r_[p_cams, x0.ravel()]
    if board is not None:
        rows_b = 2 * len(ci) + 2 * np.arange(n_board)
        for j, i in enumerate(free):
            r = rows_b[board.camera == i]
            for k in range(per):
                sparsity[r, per * j + k] = 1
                sparsity[r + 1, per * j + k] = 1
        for k in range(6):
            sparsity[rows_b, n_cam_p + n_pt_p + 6 * board.view + k] = 1
            sparsity[rows_b + 1, n_cam_p + n_pt_p + 6 * board.view + k] = 1
        p0 = np.r_[p0, board.poses.ravel()]
    if scale_gauge:
        sparsity[n_res - 1, :n_cam_p] = 1
    sol = least_squares(resid, p0, jac_sparsity=sparsity, loss="soft_l1",
                        f_scale=f_scale_px, x_scale="jac", max_nfev=max_nfev, method="trf")
    refined_cams, _ = unpack(sol.x)
    after = label_reprojection_px(refined_cams, points2d, w)
    changes = {}
    for i in free:
        c0, c1 = cameras[i], refined_cams[i]
        rel = rodrigues(c1.rotation) @ rodrigues(c0.rotation).T
        changes[names[i]] = {
            "moved_mm": float(np.linalg.norm(c1.centre - c0.centre)),
            "rotated_deg": float(np.degrees(np.linalg.norm(rotation_vector(rel)))),
            "focal_pct": float(100 * (c1.matrix[0, 0] / c0.matrix[0, 0] - 1)),
            "k1": float(c1.distortions[0] - c0.distortions[0]),
        }
    out = Refinement(refined_cams, [names[i] for i in free], intrinsics, float(f_scale_px), int(len(x0)),
                     before, after, changes)
    logger.debug("%s", out.summary())
    return out


@dataclass
class HeldOut:
    """One cross-validation fold of :func:`cross_validate_refinement`.

    Attributes
    ----------
    fit, test
        ``(first, last)`` frame of the frames fitted on and of the held-out frames.
    before_px, after_px
        Per camera: median reprojection (px) of the held-out labels with the given and
        with the refined cameras.
    novelty_mm
        Median over keypoints of the distance between a keypoint's mean 3D position in the
        held-out and in the fitted frames: near 0, the held-out frames repeat the fitted
        points and the check has little power.
    refinement
        The refinement fitted on ``fit``.
    """

    fit: tuple[int, int]
    test: tuple[int, int]
    before_px: dict[str, float]
    after_px: dict[str, float]
    novelty_mm: float
    refinement: Refinement


def cross_validate_refinement(cameras: Sequence[Camera], points2d: np.ndarray, weights: np.ndarray | None = None,
                              **kwargs: object) -> list[HeldOut]:
    """Refine on the first half of the frames and score the second, then the other way round.

    Parameters
    ----------
    cameras
        ``C`` cameras.
    points2d
        ``(C, T, N, 2)`` labels per frame (``N`` keypoints x individuals).
    weights
        ``(C, T, N)`` confidence.
    **kwargs
        Passed to :func:`refine_calibration` (``refine``, ``intrinsics``, ``board`` ...).

    Returns
    -------
    list of HeldOut
        Two folds (contiguous halves: neighbouring frames are nearly the same points, so
        interleaved frames would flatter the refinement).
    """
    points2d = np.asarray(points2d, dtype=float)
    c, t, n = points2d.shape[:3]
    w = np.ones((c, t, n)) if weights is None else np.asarray(weights, dtype=float)
    if t < 4:
        raise RefinementError(f"only {t} frames: cross-validation needs >= 4")
    tri = triangulate_robust(cameras, points2d.reshape(c, -1, 2), w.reshape(c, -1)).points3d.reshape(t, n, 3)
    half = t // 2
    folds = []
    for fit, test in ((np.arange(half), np.arange(half, t)), (np.arange(half, t), np.arange(half))):
        with warnings.catch_warnings():  # a keypoint never seen in one half: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            d = np.linalg.norm(np.nanmean(tri[test], axis=0) - np.nanmean(tri[fit], axis=0), axis=-1)
        ref = refine_calibration(cameras, points2d[:, fit].reshape(c, -1, 2), w[:, fit].reshape(c, -1), **kwargs)
        held = (points2d[:, test].reshape(c, -1, 2), w[:, test].reshape(c, -1))
        folds.append(HeldOut((int(fit[0]), int(fit[-1])), (int(test[0]), int(test[-1])),
                             label_reprojection_px(cameras, *held), label_reprojection_px(ref.cameras, *held),
                             float(np.nanmedian(d)) if np.isfinite(d).any() else float("nan"), ref))
    return folds
