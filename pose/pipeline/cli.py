"""``ethopose pose ...``: project, label import, frames, train, evaluate, analyze, labelled video, ONNX.

Each command parses its arguments, calls one library function, and prints where the result
went. torch is imported inside the commands only. (``outliers`` and ``merge`` are mounted on
this app by ``pose.refine``.)
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


def _split_names(values: list[str] | None) -> list[str]:
    """Accept ``--bodyparts a,b --bodyparts c`` and ``--bodyparts "a b"`` alike."""
    out: list[str] = []
    for v in values or []:
        out += [x for x in v.replace(",", " ").split() if x]
    return out


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _parse_pairs(text: str | None) -> list[tuple[str, str]] | None:
    """``'a:b,c:d'`` -> ``[("a", "b"), ("c", "d")]``; ``'none'`` -> ``[]``; None -> None."""
    if text is None:
        return None
    if text.strip().lower() in ("none", ""):
        return []
    pairs = [tuple(p.split(":")) for p in _split_names([text])]
    bad = [p for p in pairs if len(p) != 2]
    if bad:
        raise typer.BadParameter(f"--flip-pairs entries must look like left:right, got {bad}")
    return pairs  # type: ignore[return-value]


def _echo_quality(result: dict) -> None:
    """Normalized errors, then the failure warning (stderr) when the model failed."""
    from pose.pipeline.evaluate import quality_warning

    parts = [f"{p} {result[p]['normalized_error']:.3f}" for p in ("train", "test")
             if (result.get(p) or {}).get("normalized_error") is not None]
    if parts:
        typer.echo(f"normalized error (mean px / animal size {result['animal_size_px']:.0f} px): " + ", ".join(parts))
    warning = quality_warning(result)
    if warning:
        typer.echo(warning, err=True)


@app.command("new")
def new(
    project: Path = typer.Argument(..., help="Folder of the new project."),
    bodyparts: list[str] = typer.Option(..., "--bodyparts", "-b", help="Body part names (comma-separated or repeated)."),
    videos: list[Path] = typer.Option(None, "--videos", "-v", help="Videos of the project."),
    skeleton: list[str] = typer.Option(None, "--skeleton", help="Edges as a-b (repeatable)."),
    copy_videos: bool = typer.Option(False, "--copy-videos", help="Copy the videos into PROJECT/videos."),
) -> None:
    """Create a project folder with a DeepLabCut-compatible config.yaml."""
    from pose.pipeline.project import create_project

    edges = [e.split("-", 1) for e in _split_names(skeleton)]
    bad = [e for e in edges if len(e) != 2]
    if bad:
        raise typer.BadParameter(f"skeleton edges must look like a-b, got {bad}")
    p = create_project(project, _split_names(bodyparts), list(videos or []), skeleton=edges, copy_videos=copy_videos)
    typer.echo(f"created project {p.root}")


@app.command("extract-frames")
def extract_frames_cmd(
    project: Path = typer.Argument(..., help="Project folder."),
    videos: list[Path] = typer.Option(None, "--video", help="Videos (default: the project's video_sets)."),
    n_frames: int = typer.Option(20, "--n", help="Frames per video."),
    method: str = typer.Option("kmeans", "--method", help="kmeans or uniform."),
    start: float = typer.Option(0.0, help="Start, as a fraction of the video."),
    stop: float = typer.Option(1.0, help="Stop, as a fraction of the video."),
    seed: int = typer.Option(0, help="Random seed (k-means)."),
) -> None:
    """Pick frames to label and write them to PROJECT/labeled-data/<video>/."""
    from pose.pipeline.frames import extract_frames
    from pose.pipeline.project import load_project

    p = load_project(project)
    vids = list(videos or []) or [Path(v) for v in (p.raw.get("video_sets") or {})]
    if not vids:
        raise typer.BadParameter("no videos: pass --video or add video_sets to config.yaml")
    if method not in ("kmeans", "uniform"):
        raise typer.BadParameter(f"--method must be kmeans or uniform, got {method}")
    for v in vids:
        paths = extract_frames(v, p.labeled_data / Path(v).stem, n_frames, method=method,  # type: ignore[arg-type]
                               start=start, stop=stop, seed=seed)
        typer.echo(f"{v}: {len(paths)} frames -> {p.labeled_data / Path(v).stem}")


@app.command("train")
def train(
    project: Path = typer.Argument(..., help="Project folder (config.yaml + labeled-data)."),
    out: Path = typer.Option(None, "--out", help="Model folder (default PROJECT/models/<backbone>-<time>)."),
    backbone: str = typer.Option("efficientnet_lite0", help="efficientnet_lite0, resnet50, mobilenet_v2, mobilenet_v3."),
    epochs: int = typer.Option(200, help="Maximum number of epochs."),
    minutes: float = typer.Option(None, help="Wall-clock training budget (drives the LR schedule)."),
    cpu_minutes: float = typer.Option(None, help="Budget in process CPU time instead (for shared machines)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    scale: float = typer.Option(None, help="Input scale (0.5 = half resolution); default: from the animal's size."),
    test_frames: Path = typer.Option(None, "--test-frames", help="File: one test image name per line."),
    training_fraction: float = typer.Option(None, help="Training fraction (default: config's TrainingFraction)."),
    init_from: Path = typer.Option(None, "--from", help="Initialise from this model folder's weights."),
    resume: bool = typer.Option(False, "--resume", help="Continue --out's checkpoint exactly."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the model already in --out."),
    batch_size: int = typer.Option(8, help="Batch size."),
    lr: float = typer.Option(1e-3, help="Peak learning rate (AdamW)."),
    stride: int = typer.Option(4, help="Output stride, 4 or 8 (8: up to ~1.2x faster inference, less precise)."),
    crop_px: int = typer.Option(None, help="Training crop side in network pixels (multiple of 32); "
                                "default: from the labelled animals' size."),
    sigma_px: float = typer.Option(None, help="Score-map width (network px); default: from the keypoint spacing."),
    rotation_deg: float = typer.Option(None, help="Maximum augmentation rotation (180 = any angle); "
                                       "default: full for a top view, else modest."),
    view: str = typer.Option(None, help="top, bottom, side, front, mirror or other; default: config's, else "
                             "judged from the labels."),
    flip_pairs: str = typer.Option(None, help="Left/right pairs swapped by flips, 'a:b,c:d'; 'none' = no flips; "
                                   "default: config's symmetry_pairs, else matched from the names."),
    repeats: int = typer.Option(None, help="Passes over the training frames per epoch (default: ~256 samples)."),
    seed: int = typer.Option(0, help="Random seed (split, augmentation, init)."),
    pretrained: bool = typer.Option(True, help="Start from ImageNet weights when available."),
    freeze_stride: int = typer.Option(0, help="Keep the backbone's layers up to this output stride (2, 4, 8) "
                                      "at their ImageNet weights: cheaper steps; 0 = train all."),
    anchor_sigma_px: float = typer.Option(None, help="Multi-animal: width (image px) of the instance model's "
                                          "anchor channel, a Gaussian at the crop centre saying which animal "
                                          "is meant; default: from the closest labelled animals; 0 = none."),
    threads: int = typer.Option(None, help="torch CPU threads."),
) -> None:
    """Train a pose model; the last line printed ends with the model folder."""
    from pose.pipeline.augment import AugmentConfig
    from pose.pipeline.train import TrainConfig, train_model

    _threads(threads)
    if resume and out is None:
        raise typer.BadParameter("--resume needs --out MODEL_DIR")
    try:
        cfg = TrainConfig(backbone=backbone, epochs=epochs, minutes=minutes, cpu_minutes=cpu_minutes, device=device, scale=scale,  # type: ignore[arg-type]
                          batch_size=batch_size, lr=lr, stride=stride, seed=seed, pretrained=pretrained,  # type: ignore[arg-type]
                          repeats=repeats, sigma_px=sigma_px, view=view, freeze_stride=freeze_stride,  # type: ignore[arg-type]
                          flip_pairs=_parse_pairs(flip_pairs), anchor_sigma_px=anchor_sigma_px or None,
                          augment=AugmentConfig(crop_px=crop_px, rotation_deg=rotation_deg))
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    from pose.pipeline.checkpoint import CheckpointMismatchError
    from pose.pipeline.topdown import multi_animal_reason, train_topdown

    try:
        multi, why = multi_animal_reason(project)
    except (FileNotFoundError, ValueError):
        multi = False  # train_model reports the problem
    if multi:  # several animals per frame: the top-down pipeline (pose.pipeline.topdown)
        typer.echo(why)
        if init_from is not None:
            raise typer.BadParameter("--from is not available for multi-animal (top-down) training")
        try:
            model_dir = train_topdown(project, config=cfg, out_dir=out, test_frames=test_frames,
                                      training_fraction=training_fraction, overwrite=overwrite, resume=resume,
                                      anchor=anchor_sigma_px != 0)
        except (FileExistsError, FileNotFoundError, CheckpointMismatchError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"model: {model_dir}")
        return
    if anchor_sigma_px:
        raise typer.BadParameter("--anchor-sigma-px is for multi-animal (top-down) projects: a single-animal "
                                 "model sees the whole frame, whose centre is not an animal's")
    try:
        model_dir = train_model(project, config=cfg, out_dir=out, test_frames=test_frames,
                                training_fraction=training_fraction, init_from=init_from, resume=resume,
                                overwrite=overwrite)
    except (FileExistsError, FileNotFoundError, CheckpointMismatchError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"model: {model_dir}")


@app.command("evaluate")
def evaluate(
    model_dir: Path = typer.Argument(..., help="Trained model folder."),
    project: Path = typer.Option(None, help="Project (default: the one the model was trained on)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    runtime: str = typer.Option("auto", help="auto, torch, onnx or onnx-int8."),
    threads: int = typer.Option(None, help="torch CPU threads."),
) -> None:
    """Train/test errors (mean, RMSE, p-cutoff, PCK@5/10) -> MODEL_DIR/evaluation.json
    (evaluation_int8.json with --runtime onnx-int8)."""
    from pose.pipeline.evaluate import evaluate_model, evaluation_paths, format_table

    _threads(threads)
    result = evaluate_model(model_dir, project=project, device=device, runtime=runtime)
    typer.echo(format_table(result))
    typer.echo(f"pcutoff {result['pcutoff']}; runtime {result['runtime']}; "
               f"saved {evaluation_paths(model_dir, runtime)[0]}")
    _echo_quality(result)


@app.command("analyze")
def analyze(
    model_dir: Path = typer.Argument(..., help="Trained model folder."),
    videos: list[Path] = typer.Argument(..., help="Videos to analyse."),
    out: Path = typer.Option(None, "--out", help="Output folder (default: beside each video)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo videos already analysed."),
    batch_size: int = typer.Option(8, help="Frames per inference batch."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    runtime: str = typer.Option("auto", help="auto (onnxruntime fp32 on CPU), torch, onnx or onnx-int8 "
                                "(about 2x faster on CPU; check its accuracy with evaluate --runtime onnx-int8)."),
    threads: int = typer.Option(None, help="CPU threads."),
    formats: str = typer.Option("h5,csv,nc", help="Output formats, comma-separated (h5, csv, nc)."),
) -> None:
    """Predict poses in videos -> .nc (ethopose) + .h5/.csv (DeepLabCut layout).

    A video that cannot be read is reported (one line each, at the end) and the others are
    still analysed; the exit code is then 1. Truncated videos are analysed and marked."""
    from pose.pipeline.inference import FORMATS, Predictor, analyze_videos

    bad = sorted(set(_split_names([formats])) - set(FORMATS))
    if bad:
        raise typer.BadParameter(f"unknown output formats {bad}; choose from {FORMATS}")
    try:
        pred = Predictor.from_dir(model_dir, device=device, runtime=runtime, threads=threads)  # type: ignore[arg-type]
    except (FileNotFoundError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    result = analyze_videos(pred.model, videos, out_dir=out, overwrite=overwrite, batch_size=batch_size,
                            formats=_split_names([formats]), predictor=pred)
    for p in result.done:
        typer.echo(str(p))
    for v in result.truncated:
        typer.echo(f"warning: {v} is truncated (fewer frames than its header lists): "
                   "see n_frames_expected / n_frames_read in the .nc attrs", err=True)
    for v, message in result.failed:
        typer.echo(f"failed: {v}: {message}", err=True)
    if result.failed:
        typer.echo(f"{len(result.failed)} of {len(videos)} videos failed", err=True)
        raise typer.Exit(1)


@app.command("infer")
def infer(
    model_dir: Path = typer.Argument(..., help="Trained model folder (single- or multi-animal)."),
    video: Path = typer.Argument(..., help="Video to analyse."),
    out: Path = typer.Option(..., "--out", help="Pose file to write (.nc, .h5, .csv; format from the suffix)."),
    n_animals: int = typer.Option(None, "--n-animals", min=1, help="Multi-animal: animals per frame (default: the "
                                  "most labelled in one frame, as the identity tracking assumes)."),
    track_ids: bool = typer.Option(True, "--track/--no-track", help="Multi-animal: assign identities "
                                   "(ethopose pose track) after detection."),
    split_merged: bool = typer.Option(False, "--split-merged/--no-split-merged", help="Multi-animal, with "
                                      "--n-animals: split a centroid peak in which animals in contact merged."),
    propagate: bool = typer.Option(True, "--propagate/--no-propagate", help="Multi-animal, with --n-animals: "
                                   "a frame with fewer animals also gets crops at the previous frame's instances it "
                                   "lacks (animals in contact)."),
    start: int = typer.Option(0, help="First frame."),
    stop: int = typer.Option(None, help="Frame after the last (default: the end)."),
    batch_size: int = typer.Option(8, help="Frames per inference batch."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    runtime: str = typer.Option("auto", help="auto, torch, onnx or onnx-int8 (of the pose network)."),
    threads: int = typer.Option(None, help="CPU threads."),
) -> None:
    """Predict the pose of every animal in a video -> OUT; a multi-animal (top-down) model's
    instances are then tracked into identities (OUT) and the untracked ones kept beside it
    (<OUT stem>_instances.nc)."""
    import pose.io
    from pose.pipeline.topdown import TopDownPredictor, is_topdown_model, missing_animals_warning

    if not is_topdown_model(model_dir):
        from pose.pipeline.inference import Predictor

        ds = Predictor.from_dir(model_dir, device=device, runtime=runtime, threads=threads).predict_video(  # type: ignore[arg-type]
            video, batch_size=batch_size, start=start, stop=stop)
        pose.io.save(ds, out)
        typer.echo(f"wrote {out}: {ds.sizes['time']} frames (single-animal model)")
        return
    # the count the tracking below assumes (a closed arena), so that inference looks for as many
    # animals (the strongest peaks, the unsure ones dropped, the missing ones searched for) as
    # the benchmarked path does (bench/multi_animal_pose.py)
    pred = TopDownPredictor(model_dir, n_animals=n_animals or "labels", runtime=runtime, device=device,
                            threads=threads, split_merged=split_merged, propagate=propagate)
    typer.echo(f"top-down: {pred.n_animals} animals per frame ("
               + ("--n-animals" if n_animals else f"{pred.info.reasons.get('n_animals', 'the labels')}; --n-animals "
                  "to change") + ")")
    ds = pred.predict_video(video, batch_size=batch_size, start=start, stop=stop)
    found = (ds["position"].notnull().any(dim=("space", "keypoint"))).sum(dim="individual").values
    typer.echo(f"top-down: {ds.sizes['time']} frames, up to {ds.sizes['individual']} animals per frame "
               f"(mean {found.mean():.2f} found)")
    warning = missing_animals_warning(ds, pred.n_animals)
    if warning:
        typer.secho(warning, fg="red", err=True)
    if not track_ids:
        pose.io.save(ds, out)
        typer.echo(f"wrote {out} (untracked instances)")
        return
    instances = out.with_name(out.name.split(".")[0] + "_instances.nc")
    pose.io.save(ds, instances)
    typer.echo(f"wrote {instances} (untracked instances); tracking identities")
    from pose.tracking.cli import track

    track(pose_file=instances, out=out, video=None, n_animals=pred.n_animals, open_set=False,
          max_coast_s=1.0, gate_px=None, low_margin=0.25, fps=None, suspects=None)


@app.command("labeled-video")
def labeled_video(
    model_dir: Path = typer.Argument(..., help="Trained model folder."),
    video: Path = typer.Argument(..., help="Video (analysed first if needed)."),
    out: Path = typer.Option(None, "--out", help="Output video (default <video>_labeled.mp4 beside the results)."),
    pcutoff: float = typer.Option(None, help="Hide keypoints below this confidence (default: the model's)."),
    results: Path = typer.Option(None, "--results", help="Folder of analyze's outputs (analyze --out)."),
) -> None:
    """Render predicted keypoints and the skeleton over a video."""
    import pose.io
    from pose.pipeline.frames import render_labeled_video
    from pose.pipeline.inference import analyze_videos, output_paths
    from pose.pipeline.modeldir import ModelDir

    md = ModelDir.open(model_dir)
    info = md.info
    nc = output_paths(md, video, results)["nc"]
    if not nc.is_file():
        failed = analyze_videos(md, [video], out_dir=results).failed
        if failed:
            typer.echo(f"failed: {video}: {failed[0][1]}", err=True)
            raise typer.Exit(1)
    ds = pose.io.load(nc)
    target = out or nc.with_name(f"{video.stem}_labeled.mp4")
    render_labeled_video(video, ds, target, skeleton=info.skeleton,
                         pcutoff=info.pcutoff if pcutoff is None else pcutoff)
    typer.echo(str(target))


@app.command("export-onnx")
def export_onnx_cmd(
    model_dir: Path = typer.Argument(..., help="Trained model folder."),
    out: Path = typer.Option(None, "--out", help="ONNX file (default MODEL_DIR/model.onnx or model_int8.onnx)."),
    int8: bool = typer.Option(False, "--int8", help="Also quantize to int8, calibrated on the training frames."),
    project: Path = typer.Option(None, help="Project for the int8 calibration frames (default: the model's)."),
    calibration_images: int = typer.Option(32, help="Training frames the int8 calibration uses."),
) -> None:
    """Export the model to ONNX (dynamic batch and image size); --int8 writes the quantized model."""
    from pose.pipeline.export import export_onnx
    from pose.pipeline.quantize import quantize_model

    if int8:
        typer.echo(str(quantize_model(model_dir, project=project, n_images=calibration_images, out_path=out)))
    else:
        typer.echo(str(export_onnx(model_dir, out)))


@app.command("import")
def import_labels(
    source: Path = typer.Argument(..., help="Labels: DeepLabCut/Lightning Pose CollectedData csv/h5, SLEAP .slp/.pkg.slp, "
                                  "COCO keypoints .json, or labels of a video's frames (with --video)."),
    project: Path = typer.Argument(..., help="Folder of the new project."),
    video: Path = typer.Option(None, "--video", help="The video whose frames the labels' rows are."),
    fmt: str = typer.Option("auto", "--format", help="auto, dlc, sleap, coco or video."),
    frame_offset: int = typer.Option(None, "--frame-offset", help="Video labels: frame = number in the image name "
                                     "- OFFSET (default: detected, and printed)."),
    images: Path = typer.Option(None, "--images", help="Folder the source's image paths are relative to."),
    scorer: str = typer.Option("imported", help="Scorer name of the CollectedData files."),
) -> None:
    """Make a project from another tool's labels (frames copied or extracted exactly)."""
    from pose.pipeline.importers import LabelImportError, read_labels, write_project
    from pose.video import VideoError

    try:
        labels = read_labels(source, fmt=fmt, video=video, frame_offset=frame_offset, image_root=images)  # type: ignore[arg-type]
        for note in labels.notes:
            typer.echo(note)
        p = write_project(labels, project, scorer=scorer)
    except (LabelImportError, VideoError, FileNotFoundError, FileExistsError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(labels.frames)} labelled frames, {len(labels.bodyparts)} body parts, "
               f"{len(labels.individuals)} individuals -> project {p.root}")


if __name__ == "__main__":
    app()
