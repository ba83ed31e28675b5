"""Refinement commands: ``ethopose pose outliers``, ``ethopose pose merge``, ``ethopose pose compare``.

Thin: parse, call one library function, print. Heavy imports (torch via inference) happen
inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _predictions(model_dir: Path, video: Path, predictions: Path | None):
    from pose import io as pose_io

    if predictions is not None:
        ds = pose_io.load(predictions)
        ds.attrs.setdefault("model_dir", str(model_dir))
        return ds
    from pose.pipeline.inference import output_paths, predict_video

    done = output_paths(model_dir, video)["nc"]
    if done.is_file():
        typer.echo(f"using existing predictions {done}")
        ds = pose_io.load(done)
        ds.attrs.setdefault("model_dir", str(model_dir))
        return ds
    return predict_video(model_dir, video)


def outliers(
    model_dir: Path = typer.Argument(..., help="Trained model folder."),
    video: Path = typer.Argument(..., help="Video whose hard frames to extract."),
    method: str = typer.Option("fit", "--method", help="jump | fit | uncertain | ensemble."),
    n_frames: int = typer.Option(20, "--n-frames", min=1, help="Frames to extract."),
    epsilon_px: float = typer.Option(20.0, "--epsilon-px", help="jump/fit/ensemble threshold, px."),
    p_bound: float = typer.Option(0.6, "--p-bound", help="uncertain: a body part below this confidence."),
    p_cutoff: float = typer.Option(0.1, "--p-cutoff", help="jump/fit: ignore points below this confidence."),
    project: Path = typer.Option(None, "--project", help="Project folder (default: the model's project)."),
    predictions: Path = typer.Option(None, "--predictions", help="Predictions of VIDEO by MODEL_DIR (.nc/.h5); default: analyse it."),
    ensemble_model: list[Path] = typer.Option([], "--ensemble-model", help="Other model for --method ensemble (repeat)."),
    seed: int = typer.Option(0, "--seed", help="k-means seed."),
) -> None:
    """Extract the frames a model most likely gets wrong, with its predictions to correct."""
    import json

    from pose.refine.extract import extract_outlier_frames
    from pose.refine.outliers import OUTLIER_METHODS

    if method not in OUTLIER_METHODS:
        _fail(f"--method must be one of {', '.join(OUTLIER_METHODS)}, got {method!r}")
    if not video.is_file():
        _fail(f"video {video} not found")
    if project is None:
        info = model_dir / "model.json"
        if not info.is_file():
            _fail(f"{model_dir} is not a model folder (no model.json); pass --project")
        project = Path(json.loads(info.read_text()).get("project") or "")
        if not (project / "config.yaml").is_file():
            _fail(f"the model's project {project} has no config.yaml; pass --project")
    if method == "ensemble" and not ensemble_model:
        _fail("--method ensemble needs at least one --ensemble-model MODEL_DIR")
    preds = _predictions(model_dir, video, predictions)
    others = [_predictions(m, video, None) for m in ensemble_model]
    threshold = 1.0 - p_bound if method == "uncertain" else epsilon_px
    try:
        result = extract_outlier_frames(
            project, preds, video, method=method, n_frames=n_frames, threshold=threshold,
            p_cutoff=p_cutoff, ensemble=others, random_state=seed,
        )
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"{result.n_candidates} candidate frames; extracted {len(result.images)} to {result.folder}")
    typer.echo(f"machine labels: {result.machine_labels} (iteration {result.iteration})")
    typer.echo(f"next: ethopose label {project}")


def merge(
    project: Path = typer.Argument(..., help="Project folder."),
    model: Path = typer.Option(None, "--model", help="The model whose outliers were corrected."),
    accept_machine: bool = typer.Option(False, "--accept-machine", help="Unlabelled extracted frames take the model's confident predictions."),
    p_cutoff: float = typer.Option(0.6, "--p-cutoff", help="Confidence needed with --accept-machine."),
) -> None:
    """Merge the corrected outlier frames into the training set (next iteration)."""
    from pose.refine.merge import merge_refined_labels

    try:
        result = merge_refined_labels(project, model_dir=model, accept_machine=accept_machine, p_cutoff=p_cutoff)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"merged {len(result.images)} frames ({len(result.accepted_machine)} from machine labels); "
               f"iteration {result.iteration} -> {result.new_iteration}")
    cmd = f"ethopose pose train {project}"
    if model is not None:
        cmd += f" --from {model}"
    if result.test_frames_file is not None:
        cmd += f" --test-frames {result.test_frames_file}"
    typer.echo(f"next: {cmd}")


def compare(
    project: Path = typer.Argument(..., help="Project folder."),
    model_dirs: list[Path] = typer.Argument(..., help="Models to compare (e.g. one per iteration)."),
    out: Path = typer.Option(None, "--out", help="Also write the table as csv."),
) -> None:
    """Compare models on the same labelled test frames (those of the first model)."""
    from pose.atomic import atomic_path
    from pose.refine.merge import compare_iterations

    try:
        table = compare_iterations(project, model_dirs)
    except (ValueError, FileNotFoundError, KeyError) as err:
        _fail(str(err))
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if out is not None:
        with atomic_path(out) as tmp:
            table.to_csv(tmp, index=False)
