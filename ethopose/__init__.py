"""ethopose application shell: the ``ethopose`` command line and the built-in demo.

The library lives in the layer packages ``pose``, ``features``, ``behavior``,
``protocols`` and ``dashboard``; this package only wires them into one CLI.
"""

from pose._version import __version__

__all__ = ["__version__"]
