"""Dashboard CLI (being built)."""


def dashboard() -> None:
    """Open the dashboard (being built)."""
    raise NotImplementedError
