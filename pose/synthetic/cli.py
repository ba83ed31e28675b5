"""``ethopose synth``: render the virtual mouse to a folder with exact ground truth."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Render the virtual mouse: videos with exact truth.")


class Level(str, Enum):
    none = "none"
    mild = "mild"
    heavy = "heavy"


class CoatName(str, Enum):
    black = "black"
    agouti = "agouti"


class GaitName(str, Enum):
    walk = "walk"
    trot = "trot"


class View(str, Enum):
    side = "side"
    bottom = "bottom"


def _nuisances(level: Level, no_nuisance: bool):  # -> NuisanceConfig (imported lazily)
    from pose.synthetic.nuisance import NuisanceConfig

    return NuisanceConfig.preset("none" if no_nuisance else level.value)


def _report(session) -> None:
    typer.echo(f"Rendered {session.pose.sizes['time']} frames at {session.render_fps:.0f} fps "
               f"({session.render_cpu_fps:.0f} per CPU second) into {session.out_dir}")
    for name, path in session.files.items():
        typer.echo(f"  {name:12s} {path}")


@app.command("open-field")
def open_field(
    out: Path = typer.Option(..., "--out", help="Output folder (created)."),
    seconds: float = typer.Option(60.0, min=0.1, help="Session length (s)."),
    seed: int = typer.Option(0, help="Random seed; same seed, same truth."),
    width: int = typer.Option(640, min=64, help="Frame width (px, even)."),
    height: int = typer.Option(480, min=64, help="Frame height (px, even)."),
    fps: float = typer.Option(30.0, min=1.0, help="Frames per second."),
    nuisance: Level = typer.Option(Level.mild, help="Nuisance level."),
    no_nuisance: bool = typer.Option(False, "--no-nuisance", help="Clean video (level none)."),
    n_label_frames: int = typer.Option(20, min=0, help="Frames written to labeled-data/."),
    speed_scale: float = typer.Option(1.0, min=0.1, help="Multiplies locomotor speeds."),
    center_preference: float = typer.Option(0.3, min=0.0, max=1.0,
                                            help="0 hugs the walls, 1 seeks the centre."),
    coat: CoatName = typer.Option(CoatName.black, help="Coat colour (black: C57BL/6)."),
) -> None:
    """Top-view open-field session: video, truth.nc/.h5, behavior.csv, arena.json, labels."""
    from pose.synthetic.render import render_open_field

    session = render_open_field(out, seconds, seed, width, height, fps,
                                _nuisances(nuisance, no_nuisance), n_label_frames,
                                speed_scale=speed_scale, center_preference=center_preference,
                                coat=coat.value)
    _report(session)


@app.command("gait")
def gait(
    out: Path = typer.Option(..., "--out", help="Output folder (created)."),
    seconds: float = typer.Option(10.0, min=0.1, help="Recording length (s)."),
    seed: int = typer.Option(0, help="Random seed; same seed, same truth."),
    gait_name: GaitName = typer.Option(GaitName.walk, "--gait", help="walk or trot."),
    speed_mm_s: float = typer.Option(150.0, min=1.0, help="Body speed (mm/s)."),
    stride_length_mm: float = typer.Option(60.0, min=1.0, help="Stride length (mm)."),
    view: View = typer.Option(View.side, help="side (beam) or bottom (glass floor)."),
    treadmill: bool = typer.Option(False, "--treadmill", help="Still camera, moving belt."),
    width: int = typer.Option(640, min=64, help="Frame width (px, even)."),
    height: int = typer.Option(360, min=64, help="Frame height (px, even)."),
    fps: float = typer.Option(100.0, min=1.0, help="Frames per second."),
    nuisance: Level = typer.Option(Level.mild, help="Nuisance level."),
    no_nuisance: bool = typer.Option(False, "--no-nuisance", help="Clean video (level none)."),
    n_label_frames: int = typer.Option(20, min=0, help="Frames written to labeled-data/."),
) -> None:
    """Gait recording: video, truth, gait_events.csv (exact touch-down/toe-off), labels."""
    from pose.synthetic.render import render_gait

    session = render_gait(out, seconds, seed, width, height, fps,
                          _nuisances(nuisance, no_nuisance), n_label_frames,
                          gait=gait_name.value, speed_mm_s=speed_mm_s,
                          stride_length_mm=stride_length_mm, view=view.value,
                          treadmill=treadmill)
    _report(session)
