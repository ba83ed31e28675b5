"""Reproducible train/test splits of labelled frames, saved with each model (torch-free)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pose.atomic import write_text_atomic

SPLIT_NAME = "split.json"


@dataclass(frozen=True)
class Split:
    """Which labelled images are used for training and which for testing.

    Attributes
    ----------
    train, test
        Image paths relative to the project root.
    rule
        ``"fraction"`` (DeepLabCut's shuffle-then-take rule) or ``"test-frames"``.
    training_fraction, seed
        Parameters of the fraction rule (None for a user-given list).
    """

    train: list[str]
    test: list[str]
    rule: str
    training_fraction: float | None = None
    seed: int | None = None

    def save(self, path: str | Path) -> Path:
        return write_text_atomic(path, json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Split:
        return cls(**json.loads(Path(path).read_text()))


def split_by_fraction(images: list[str], training_fraction: float, seed: int = 0) -> Split:
    """DeepLabCut's rule: shuffle the frame indices with ``seed``, then take the fraction.

    ``n_train = round(n * training_fraction)`` frames from the front of a
    ``numpy.random.RandomState(seed).permutation(n)`` go to training, the rest to testing.
    """
    if not 0.0 < training_fraction <= 1.0:
        raise ValueError(f"training_fraction must be in (0, 1], got {training_fraction}")
    n = len(images)
    if n == 0:
        raise ValueError("no labelled images to split")
    perm = np.random.RandomState(seed).permutation(n)
    n_train = int(round(n * training_fraction))
    train = sorted(perm[:n_train].tolist())
    test = sorted(perm[n_train:].tolist())
    return Split(
        train=[images[i] for i in train],
        test=[images[i] for i in test],
        rule="fraction",
        training_fraction=training_fraction,
        seed=seed,
    )


def read_test_frames(path: str | Path) -> list[str]:
    """Read a test-frame list: one image name or path per line; blank lines and # comments skipped."""
    lines = Path(path).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def split_by_test_frames(images: list[str], test_frames: list[str]) -> Split:
    """Test on the named frames, train on the others.

    A name matches an image when it equals its path, its file name, or its file name without
    suffix (``img0044`` matches ``labeled-data/m4s1/img0044.png``). Every name must match
    exactly one image.
    """
    chosen: set[int] = set()
    for name in test_frames:
        hits = [
            i for i, im in enumerate(images)
            if name in (im, Path(im).name, Path(im).stem) or im.endswith("/" + name)
        ]
        if not hits:
            raise ValueError(f"test frame {name!r} matches no labelled image")
        if len(hits) > 1:
            raise ValueError(
                f"test frame {name!r} matches {len(hits)} images ({images[hits[0]]}, ...); "
                "give the path relative to the project"
            )
        chosen.add(hits[0])
    return Split(
        train=[im for i, im in enumerate(images) if i not in chosen],
        test=[im for i, im in enumerate(images) if i in chosen],
        rule="test-frames",
    )
