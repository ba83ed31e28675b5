"""Errors raised by the pose file readers and writers.

Every error names the file and, where it applies, the row, column or field at fault,
so that a user can open the file and see the problem.
"""

from __future__ import annotations

import os


class PoseFileError(ValueError):
    """A pose file cannot be read or written as the format requires.

    Parameters
    ----------
    path
        The file at fault.
    message
        What is wrong, naming the row / column / field where possible.
    """

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


class UnknownFormatError(PoseFileError):
    """The file suffix does not name a pose format ethopose reads or writes."""
