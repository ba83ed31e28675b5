"""Batch CLI (being built)."""


def run() -> None:
    """Run a protocol over a cohort (being built)."""
    raise NotImplementedError
