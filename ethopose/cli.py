"""The ``ethopose`` command line: one typer app that mirrors the layer packages.

Each layer owns its commands (``<layer>/cli.py``); this module only mounts them. Heavy
imports (torch, streamlit, dask) happen inside the commands, so ``ethopose --help`` is fast.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import click
import typer
from typer.core import TyperGroup

from behavior.cli import app as behavior_app
from dashboard.cli import dashboard
from dashboard.labelling.cli import label
from ethopose.demo import demo
from features.cli import app as features_app
from pose._version import __version__
from pose.cli_qc import qc
from pose.io.cli import convert
from pose.pipeline.cli import app as pose_app
from pose.refine.cli import compare, merge, outliers
from pose.synthetic.cli import app as synth_app
from pose.threed.cli import calibrate, refine_calibration_cmd, reprojection_video, triangulate
from pose.tracking.cli import swap, track
from protocols.cli import arena_3d, export_nwb, report, run, verify

# Exceptions whose class is defined in these packages are the project's own errors (bad
# input, named file / frame / field): one line and exit code 2, the traceback only with -v.
PROJECT_PACKAGES = ("pose", "features", "behavior", "protocols", "dashboard", "ethopose")
PROJECT_ERROR_EXIT = 2


def is_project_error(exc: BaseException) -> bool:
    """True for a project error: an exception class defined in an ethopose package
    (PoseFileError, VideoError, ProtocolError...), or a plain ValueError raised by a
    ``raise`` in ethopose code itself (input checks such as "to_mm needs px_per_mm");
    a ValueError from inside numpy/pandas is a bug and keeps its traceback."""
    if not isinstance(exc, Exception):
        return False
    if any(cls.__module__.split(".")[0] in PROJECT_PACKAGES and cls.__name__.endswith("Error")
           for cls in type(exc).__mro__):
        return True
    if type(exc) is ValueError and exc.__traceback__ is not None:
        tb = exc.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        return str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] in PROJECT_PACKAGES
    return False


class _ProjectErrorGroup(TyperGroup):
    """The top command group: turns project errors from any sub-command into one line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not is_project_error(exc):
                raise
            if ctx.params.get("verbose"):
                traceback.print_exception(exc, file=sys.stderr)
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            click.echo(f"error: {'; '.join(lines) or type(exc).__name__}", err=True)
            raise typer.Exit(PROJECT_ERROR_EXIT) from exc


app = typer.Typer(
    cls=_ProjectErrorGroup,
    name="ethopose",
    help="From lab-animal video to validated behavioural measurements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ethopose {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """ethopose: pose estimation, features, behaviour and assays for lab-animal video."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:  # dask's scheduler/worker chatter is noise for a user
        # distributed sets its own logger levels from its config when it is imported
        # (also in worker processes), so quieten it through that config.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
        for name in ("distributed", "bokeh", "tornado"):
            logging.getLogger(name).setLevel(logging.WARNING)


pose_app.command("outliers")(outliers)
pose_app.command("merge")(merge)
pose_app.command("compare")(compare)
pose_app.command("track")(track)
pose_app.command("swap")(swap)
pose_app.command("calibrate")(calibrate)
pose_app.command("triangulate")(triangulate)
pose_app.command("reprojection-video")(reprojection_video)
pose_app.command("refine-calibration")(refine_calibration_cmd)
app.add_typer(pose_app, name="pose", help="Pose pipeline: project, frames, train, evaluate, analyze, refine.")
app.add_typer(synth_app, name="synth", help="Render the virtual mouse: videos with exact ground truth.")
app.add_typer(features_app, name="features", help="Filtering, kinematics, zones and gait.")
app.add_typer(behavior_app, name="behavior", help="Behaviour states, classifiers, discovery, agreement.")
app.command("convert")(convert)
app.command("qc")(qc)
app.command("run")(run)
app.command("report")(report)
app.command("export-nwb")(export_nwb)
app.command("verify")(verify)
app.command("arena-3d")(arena_3d)
app.command("dashboard")(dashboard)
app.command("label")(label)
app.command("demo")(demo)

if __name__ == "__main__":
    app()
