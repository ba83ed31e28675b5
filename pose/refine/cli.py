"""Refinement CLI (being built)."""


def outliers() -> None:
    """Select outlier frames (being built)."""
    raise NotImplementedError


def merge() -> None:
    """Merge refined labels (being built)."""
    raise NotImplementedError
