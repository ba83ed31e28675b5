"""The built-in demo (being built)."""


def demo() -> None:
    """Run the demo (being built)."""
    raise NotImplementedError
