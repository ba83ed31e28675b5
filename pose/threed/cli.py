"""``ethopose pose calibrate`` and ``ethopose pose triangulate``: thin commands over pose.threed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

logger = logging.getLogger(__name__)


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def calibrate(
    inputs: list[str] = typer.Argument(..., help="Board images or videos (files or folders), or NAME=PATH."),
    board_file: str = typer.Option(..., "--board", help="Board TOML (anipose / sleap-anipose layout)."),
    out: str = typer.Option("calibration.toml", "--out", help="Calibration (anipose calibration.toml)."),
    camera: list[str] = typer.Option(None, "--camera", help="NAME=PATH: the camera of a file or folder (repeat)."),
    fit_k3: bool = typer.Option(False, "--fit-k3", help="Also fit the 6th-order radial distortion k3."),
    origin_frame: str | None = typer.Option(None, "--origin-frame", help="Put the world on the board at this frame."),
    max_video_frames: int = typer.Option(100, "--max-video-frames", help="Frames sampled evenly per video."),
) -> None:
    """Calibrate cameras from board views: intrinsics, joint extrinsics, per-camera errors.

    Writes OUT (anipose format), OUT's stem + ``_report.json`` (errors, used and rejected
    frames per camera) and ``_corners.png`` (detected corners green, reprojected red).
    """
    from pose.atomic import write_text_atomic
    from pose.threed.board import BoardFileError, load_board
    from pose.threed.calibration import CalibrationError, calibrate_cameras
    from pose.threed.cameras import save_calibration
    from pose.threed.sources import (
        CalibrationInputError,
        detect_all,
        group_by_camera,
        save_corner_picture,
    )

    try:
        board = load_board(board_file)
        sources = group_by_camera(list(inputs) + list(camera or []))
        typer.echo(f"board: {board.kind} {board.board_x}x{board.board_y}, {board.square_length} mm squares")
        typer.echo("cameras: " + ", ".join(f"{k} ({len(v)} file(s))" for k, v in sources.items()))
        dets, rejected, sizes, files = detect_all(sources, board, max_video_frames=max_video_frames)
        res = calibrate_cameras(dets, board, sizes, fix_k3=not fit_k3, origin_frame=origin_frame)
    except (BoardFileError, CalibrationInputError, CalibrationError) as exc:
        _fail(exc)
    for cam in res.rejected:
        res.rejected[cam] = {**rejected.get(cam, {}), **res.rejected[cam]}
    out_path = Path(out)
    save_calibration(res.cameras, out_path, res.metadata())
    report = {"board": board.model_dump(), "rms_px": res.rms_px, "intrinsic_rms_px": res.intrinsic_rms_px,
              "view_rms_px": res.view_rms_px, "used": res.used, "rejected": res.rejected,
              "shared_frames": res.shared_frames}
    write_text_atomic(out_path.with_name(out_path.stem + "_report.json"), json.dumps(report, indent=1))
    by_name = {c.name: c for c in res.cameras}
    reproj = {cam: {k: by_name[cam].project(res.board_points_world(board, k))[dets[cam][k].ids]
                    for k in res.used[cam]} for cam in res.used}
    png = save_corner_picture(out_path.with_name(out_path.stem + "_corners.png"), files, dets, reproj, res.rms_px)
    for cam in res.cameras:
        k = cam.matrix
        typer.echo(f"{cam.name}: {len(res.used[cam.name])} views used, {len(res.rejected[cam.name])} rejected; "
                   f"RMS {res.rms_px[cam.name]:.3f} px; f = {k[0, 0]:.1f}, {k[1, 1]:.1f} px; "
                   f"c = {k[0, 2]:.1f}, {k[1, 2]:.1f} px")
    worst = max(res.rms_px, key=res.rms_px.get)
    if res.rms_px[worst] > 1.0:
        typer.secho(f"warning: camera {worst!r} reprojection RMS {res.rms_px[worst]:.2f} px > 1 px: check its "
                    f"rejected frames and {png}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"wrote {out_path}, {png}")


def _match_pose_files(items: list[str], cameras: list, calibration: str) -> dict[str, Path]:
    """``{camera name: pose file}`` from NAME=FILE items or the camera names in the file names."""
    from pose.threed.cameras import CalibrationFileError
    from pose.threed.sources import camera_name_of, parse_named_paths
    from pose.threed.triangulation import TriangulationInputError

    named, plain = parse_named_paths(items)
    files = {k: v[0] for k, v in named.items()}
    known = [c.name for c in cameras]
    for f in plain:
        name = camera_name_of(f, known)
        if name not in known:
            raise CalibrationFileError(f"{f}: no camera of {calibration} ({known}) in its name; pass --camera NAME={f}")
        if name in files:
            raise TriangulationInputError(f"{f} and {files[name]} both map to camera {name!r}; use --camera")
        files[name] = f
    return files


def triangulate(
    pose_files: list[str] = typer.Argument(..., help="One 2D pose file per camera (or NAME=FILE)."),
    calibration: str = typer.Option(..., "--calibration", help="Calibration TOML (anipose format)."),
    out: str = typer.Option("points3d.nc", "--out", help="3D pose Dataset (.nc; mm)."),
    camera: list[str] = typer.Option(None, "--camera", help="NAME=FILE: the camera of a pose file (repeat)."),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate (for files without one)."),
    min_confidence: float = typer.Option(0.0, "--min-confidence", help="Ignore 2D points below this confidence."),
    threshold_px: float | None = typer.Option(None, "--threshold-px", help="Outlier camera cut-off (default from data)."),
    reprojection_dir: str | None = typer.Option(None, "--reprojection-dir", help="Write each camera's reprojected 2D pose here."),
    no_smooth: bool = typer.Option(False, "--no-smooth", help="Keep the raw triangulated points (no Kalman smoothing)."),
    process_noise: float | None = typer.Option(
        None, "--process-noise", help="Kalman white-noise acceleration std, mm/s^2 (default: maximum likelihood per keypoint)."),
) -> None:
    """Triangulate synchronised 2D poses into 3D (x, y, z in mm); reprojection error per point.

    By default the 3D track is smoothed by an RTS Kalman smoother whose measurement noise is
    each point's own triangulation uncertainty and whose process noise is fitted to the data
    (both printed); raw 3D points add speed (noise), about +10 % with 1 px 2D noise.
    ``--no-smooth`` keeps the raw points.
    """
    import numpy as np

    from pose.io import PoseFileError, load, save
    from pose.threed.cameras import CalibrationFileError, load_calibration, select_cameras
    from pose.threed.smoothing import smooth_points3d
    from pose.threed.triangulation import (
        TriangulationInputError,
        reproject_points3d,
        triangulate_poses,
    )

    try:
        cameras, _ = load_calibration(calibration)
        files = _match_pose_files(list(pose_files) + list(camera or []), cameras, calibration)
        selected = select_cameras(cameras, list(files), context=str(calibration))
        poses = {n: load(p, fps=fps) for n, p in files.items()}
        ds, reprojected = triangulate_poses(poses, selected, min_confidence=min_confidence,
                                            threshold_px=threshold_px)
    except (PoseFileError, CalibrationFileError, TriangulationInputError) as exc:
        _fail(exc)
    noise = ", ".join(f"{k} {v:.2f}" for k, v in zip(ds.keypoint.values, ds["noise_px"].values, strict=True))
    typer.echo(f"2D noise per keypoint from the reprojection residuals (px): {noise}")
    typer.echo(f"3D uncertainty (median 1-sigma per axis): {float(np.nanmedian(ds['position_std'].values)):.2f} mm")
    if not no_smooth:
        ds = smooth_points3d(ds, process_noise_mm_s2=process_noise)
        how = "given" if process_noise is not None else "maximum likelihood of the innovations"
        q = ", ".join(f"{k} {v:.0f}" for k, v in zip(ds.keypoint.values, ds["process_noise"].values, strict=True))
        floored = ds.attrs["history"][-1]["params"].get("floored_keypoints") or []
        typer.echo(f"smoothed: RTS Kalman, measurement std = each point's 3D uncertainty, process noise ({how}, "
                   f"{ds['process_noise'].attrs['units']}): {q}; --process-noise to override, --no-smooth for raw")
        if floored:
            typer.echo(f"  process noise raised to the floor (smoothing time constant <= 0.25 s) for: {', '.join(floored)}")
        reprojected = reproject_points3d(ds, selected, poses)
    ds.attrs["calibration_file"] = str(calibration)
    save(ds, out)
    for name in ds.attrs["cameras"]:
        err = ds["reprojection_error"].values
        cam_err = np.linalg.norm(reprojected[name]["position"].values - poses[name]["position"].values, axis=1)
        typer.echo(f"{name}: {Path(files[name]).name}: median reprojection {np.nanmedian(cam_err):.2f} px, "
                   f"used for {float(ds['camera_used'].sel(camera=name).mean()):.0%} of points")
    typer.echo(f"median reprojection error over used cameras {np.nanmedian(err):.2f} px; "
               f"{float(np.isfinite(ds['position'].values).all(axis=1).mean()):.0%} of points triangulated")
    if reprojection_dir:
        for name, rep in reprojected.items():
            save(rep, Path(reprojection_dir) / f"{name}_reprojected.h5")
        typer.echo(f"wrote reprojected 2D poses to {reprojection_dir}")
    typer.echo(f"wrote {out}")


def reprojection_video(
    video: str = typer.Argument(..., help="One camera's video."),
    points3d: str = typer.Option(..., "--points3d", help="3D pose file (points3d.nc from triangulate)."),
    calibration: str = typer.Option(..., "--calibration", help="Calibration TOML (anipose format)."),
    camera: str | None = typer.Option(None, "--camera", help="The video's camera (default: from the file name)."),
    pose2d: str | None = typer.Option(None, "--pose2d", help="That camera's 2D pose file, drawn as crosses."),
    out: str | None = typer.Option(None, "--out", help="Output video (default <video>_reprojected.mp4)."),
) -> None:
    """Render the 3D points reprojected into one camera over its video (dots), with its 2D pose (crosses).

    A line joins each 2D label to its reprojection: long lines show where the camera's labels
    and the 3D points (or the calibration) disagree.
    """
    from pose.io import PoseFileError, load
    from pose.threed.cameras import CalibrationFileError, load_calibration, select_cameras
    from pose.threed.review import render_reprojection_video
    from pose.threed.sources import camera_name_of

    try:
        cameras, _ = load_calibration(calibration)
        known = [c.name for c in cameras]
        name = camera or camera_name_of(Path(video), known)
        cam = select_cameras(cameras, [name], context=f"{calibration} (for {video}; pass --camera NAME)")[0]
        ds = load(points3d)
        if ds.sizes.get("space") != 3:
            raise PoseFileError(points3d, f"not a 3D pose file (space has {ds.sizes.get('space')} coordinates)")
        lab = load(pose2d) if pose2d else None
        target = Path(out) if out else Path(video).with_name(f"{Path(video).stem}_reprojected.mp4")
        render_reprojection_video(video, ds, cam, target, pose2d=lab)
    except (PoseFileError, CalibrationFileError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"camera {name!r}: wrote {target}")


def refine_calibration_cmd(
    pose_files: list[str] = typer.Argument(..., help="One 2D pose file per camera (or NAME=FILE), same frames."),
    calibration: str = typer.Option(..., "--calibration", help="Board calibration TOML (anipose format)."),
    out: str = typer.Option("calibration_refined.toml", "--out", help="Refined calibration TOML."),
    camera: list[str] = typer.Option(None, "--camera", help="NAME=FILE: the camera of a pose file (repeat)."),
    refine: str | None = typer.Option(None, "--refine", help="Cameras to refine, comma-separated (default: all "
                                      "but the camera pair whose labels agree best)."),
    intrinsics: str = typer.Option("none", "--intrinsics", help="Also refine: none | focal | focal_k1."),
    min_confidence: float = typer.Option(0.0, "--min-confidence", help="Ignore 2D points below this confidence."),
) -> None:
    """Refine a calibration on the animal's own 2D points (anipose ``calibrate --animal``), cross-validated.

    Prints what was refined and by how much, and each camera's median reprojection on the
    half of the frames the refinement did not see (fit on one half, scored on the other,
    both ways). A refinement that does not help on held-out frames is flagged in red; the
    written file is the refinement fitted on all frames.
    """
    import numpy as np

    from pose.io import PoseFileError, load
    from pose.threed.cameras import (
        CalibrationFileError,
        load_calibration,
        save_calibration,
        select_cameras,
    )
    from pose.threed.refine import RefinementError, cross_validate_refinement, refine_calibration
    from pose.threed.triangulation import TriangulationInputError, _check_poses

    if intrinsics not in ("none", "focal", "focal_k1"):
        _fail(ValueError(f"--intrinsics must be none, focal or focal_k1, got {intrinsics!r}"))
    try:
        cameras, meta = load_calibration(calibration)
        files = _match_pose_files(list(pose_files) + list(camera or []), cameras, calibration)
        selected = select_cameras(cameras, list(files), context=str(calibration))
        poses = {n: load(p) for n, p in files.items()}
        names, n_time = _check_poses(poses)
        p2 = np.stack([poses[n]["position"].transpose("time", "keypoint", "individual", "space").values
                       for n in names]).reshape(len(names), n_time, -1, 2)
        conf = np.stack([poses[n]["confidence"].transpose("time", "keypoint", "individual").values
                         for n in names]).reshape(len(names), n_time, -1)
        w = np.where(np.isnan(conf), 1.0, conf)
        w = np.where(w >= min_confidence, np.maximum(w, 1e-6), 0.0)
        which = [s.strip() for s in refine.split(",")] if refine else None
        folds = cross_validate_refinement(selected, p2, w, refine=which, intrinsics=intrinsics)
        full = refine_calibration(selected, p2.reshape(len(names), -1, 2), w.reshape(len(names), -1),
                                  refine=which or folds[0].refinement.refined, intrinsics=intrinsics)
    except (PoseFileError, CalibrationFileError, TriangulationInputError, RefinementError) as exc:
        _fail(exc)
    typer.echo(full.summary())
    worse, flat = [], []
    for f in folds:
        typer.echo(f"held-out frames {f.test[0]}-{f.test[1]} (refined on {f.fit[0]}-{f.fit[1]}; the animal's points "
                   f"there lie a median {f.novelty_mm:.1f} mm from the fitted frames'): "
                   + ", ".join(f"{n} {f.before_px[n]:.2f} -> {f.after_px[n]:.2f} px" for n in f.before_px))
        worse += [n for n in f.before_px if f.after_px[n] > 1.05 * f.before_px[n] + 0.1]
        flat.append(f.novelty_mm)
    if worse:
        typer.secho(f"warning: the refinement makes held-out labels worse in {sorted(set(worse))}: it fits label "
                    "error, not geometry; prefer the board calibration", fg=typer.colors.RED, err=True)
    if np.nanmax(flat) < 5.0:
        typer.secho(f"warning: the animal hardly moves between the halves (<= {np.nanmax(flat):.1f} mm): the "
                    "held-out frames repeat the fitted points, so this check cannot tell geometry from label "
                    "error; hold out keypoints or another session", fg=typer.colors.YELLOW, err=True)
    by = {c.name: c for c in full.cameras}
    out_cams = [by.get(c.name, c) for c in cameras]
    meta = dict(meta)
    meta["refined"] = {"from": str(calibration), "cameras": full.refined, "intrinsics": intrinsics,
                       "changes": full.changes,
                       "heldout_median_px": {f"frames_{f.test[0]}_{f.test[1]}": f.after_px for f in folds}}
    save_calibration(out_cams, out, meta)
    typer.echo(f"wrote {out}")
