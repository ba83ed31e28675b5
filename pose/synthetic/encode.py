"""Writing frames to an mp4 readable by OpenCV and PyAV: H.264 through PyAV, else mp4v."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

logger = logging.getLogger(__name__)


class VideoEncoder:
    """Encode BGR uint8 frames to ``path`` (H.264, yuv420p, with a quality ``crf``).

    Falls back to OpenCV's ``mp4v`` when PyAV has no H.264 encoder. Use as a context
    manager; the file is complete when the block exits.

    Parameters
    ----------
    path
        Output ``.mp4``.
    fps, width, height
        Frame rate and size (even sizes for yuv420p).
    crf
        H.264 constant rate factor (higher = smaller file, more artefacts).
    threads
        Encoder threads (1 keeps rendering on one core).
    """

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int,
                 crf: int = 23, threads: int = 1) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.backend = "pyav-h264"
        try:
            from fractions import Fraction

            import av

            if "libx264" not in av.codecs_available:
                raise ImportError("no libx264 in PyAV")
            self._container = av.open(str(self.path), "w")
            rate = Fraction(fps).limit_denominator(1001)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = self.width, self.height
            self._stream.pix_fmt = "yuv420p"
            self._stream.thread_count = threads
            self._stream.options = {"crf": str(int(crf)), "preset": "ultrafast",
                                    "tune": "fastdecode", "threads": str(int(threads))}
            self._av = av
        except ImportError as err:
            logger.info("PyAV H.264 unavailable (%s); writing mp4v with OpenCV", err)
            self.backend = "opencv-mp4v"
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"),
                                           float(fps), (self.width, self.height))
            if not self._writer.isOpened():
                raise OSError(f"OpenCV cannot open {self.path} for writing") from err

    def write(self, frame_bgr: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 BGR frame."""
        if frame_bgr.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"frame of shape {frame_bgr.shape} does not match the video size "
                f"{self.width}x{self.height}"
            )
        if self.backend == "opencv-mp4v":
            self._writer.write(frame_bgr)
            return
        vf = self._av.VideoFrame.from_ndarray(frame_bgr, format="bgr24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush and close the file."""
        if self.backend == "opencv-mp4v":
            self._writer.release()
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
