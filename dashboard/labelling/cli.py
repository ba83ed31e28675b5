"""Labelling CLI (being built)."""


def label() -> None:
    """Open the labelling page (being built)."""
    raise NotImplementedError
