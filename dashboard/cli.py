"""Dashboard CLI (being built)."""


def dashboard() -> None:
    """Open the dashboard (being built)."""
    raise NotImplementedError


def label() -> None:
    """Open the labelling page (being built)."""
    raise NotImplementedError
