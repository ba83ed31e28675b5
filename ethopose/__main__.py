"""``python -m ethopose``: the same app as the ``ethopose`` command."""

from ethopose.cli import app

app(prog_name="ethopose")
