"""Calibration boards (checkerboard, ChArUco): anipose's ``board.toml``, detection, drawing.

Board files follow sleap-anipose / anipose::

    board_x = 8            # ChArUco: squares along x; checkerboard: inner corners along x
    board_y = 11
    square_length = 24.0   # mm
    marker_length = 18.75  # ChArUco only (its presence makes the board a ChArUco board)
    marker_bits = 4
    dict_size = 1000

anipose's own ``config.toml`` ``[calibration]`` section (``board_type``, ``board_size``,
``board_square_side_length``, ``board_marker_length``, ``board_marker_bits``,
``board_marker_dict_number``) is read too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

_ARUCO_SIZES = (50, 100, 250, 1000)


class BoardFileError(ValueError):
    """A board file is missing or malformed; the message names the file and field."""


class Board(BaseModel):
    """A calibration board.

    Attributes
    ----------
    kind
        ``"checkerboard"`` or ``"charuco"``.
    board_x, board_y
        Checkerboard: inner corners along x and y (OpenCV's pattern size, as aniposelib).
        ChArUco: squares along x and y.
    square_length
        Side of one square (mm): sets the unit of the calibration.
    marker_length, marker_bits, dict_size
        ChArUco markers: side (mm), bits per side (4-7) and dictionary size (50-1000).
    legacy_pattern
        ChArUco boards printed with OpenCV < 4.6 and an even number of rows use the old
        layout; ``None``: try both and keep the one that finds more corners.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["checkerboard", "charuco"]
    board_x: int = Field(ge=2)
    board_y: int = Field(ge=2)
    square_length: float = Field(gt=0)
    marker_length: float | None = Field(default=None, gt=0)
    marker_bits: int = Field(default=4, ge=4, le=7)
    dict_size: int = 50
    legacy_pattern: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> Board:
        if self.kind == "charuco":
            if self.marker_length is None:
                raise ValueError("a ChArUco board needs marker_length")
            if self.marker_length >= self.square_length:
                raise ValueError(
                    f"marker_length {self.marker_length} must be smaller than square_length "
                    f"{self.square_length}"
                )
            if self.dict_size not in _ARUCO_SIZES:
                raise ValueError(f"dict_size must be one of {_ARUCO_SIZES}, got {self.dict_size}")
        return self

    @property
    def n_corners(self) -> int:
        """Number of corners on the board (inner chessboard corners)."""
        if self.kind == "checkerboard":
            return self.board_x * self.board_y
        return (self.board_x - 1) * (self.board_y - 1)

    def object_points(self) -> np.ndarray:
        """``(n_corners, 3)`` corner coordinates on the board plane (mm, z = 0), id order."""
        if self.kind == "checkerboard":
            grid = np.mgrid[0 : self.board_x, 0 : self.board_y].T.reshape(-1, 2)
            return np.hstack([grid * self.square_length, np.zeros((len(grid), 1))])
        return np.asarray(self.opencv_board().getChessboardCorners(), dtype=float).reshape(-1, 3)

    def opencv_board(self, legacy: bool | None = None) -> Any:
        """The ``cv2.aruco.CharucoBoard`` of a ChArUco board."""
        import cv2

        if self.kind != "charuco":
            raise ValueError("opencv_board() is for ChArUco boards")
        name = f"DICT_{self.marker_bits}X{self.marker_bits}_{self.dict_size}"
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))
        board = cv2.aruco.CharucoBoard(
            (self.board_x, self.board_y), float(self.square_length), float(self.marker_length), dictionary
        )
        use_legacy = self.legacy_pattern if legacy is None else legacy
        if use_legacy:
            board.setLegacyPattern(True)
        return board


def load_board(path: str | os.PathLike) -> Board:
    """Read a board TOML (sleap-anipose flat layout or anipose's ``[calibration]`` section).

    Raises
    ------
    BoardFileError
        Missing file, invalid TOML or a missing / invalid field (named).
    """
    path = Path(path)
    if not path.is_file():
        raise BoardFileError(f"{path}: board file not found")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BoardFileError(f"{path}: not a valid TOML file: {exc}") from exc
    return board_from_dict(data, context=str(path))


def board_from_dict(data: dict[str, Any], *, context: str = "board") -> Board:
    """A :class:`Board` from a sleap-anipose or anipose board table (see :func:`load_board`)."""
    data = dict(data.get("calibration", data))
    if "board_size" in data:  # anipose config.toml
        size = data.pop("board_size")
        data["board_x"], data["board_y"] = size
        renames = {"board_square_side_length": "square_length", "board_marker_length": "marker_length",
                   "board_marker_bits": "marker_bits", "board_marker_dict_number": "dict_size"}
        data = {renames.get(k, k): v for k, v in data.items() if k.startswith("board") or k in renames.values()}
        kind = data.pop("board_type", None)
    else:
        kind = data.pop("board_type", data.pop("kind", None))
    if kind is None:
        kind = "charuco" if "marker_length" in data else "checkerboard"
    kind = {"chessboard": "checkerboard"}.get(str(kind).lower(), str(kind).lower())
    if kind == "checkerboard":
        for key in ("marker_length", "marker_bits", "dict_size"):
            data.pop(key, None)
    try:
        return Board(kind=kind, **data)
    except Exception as exc:  # pydantic ValidationError: name the file
        raise BoardFileError(f"{context}: invalid board: {exc}") from exc


@dataclass(frozen=True)
class Detection:
    """Board corners found in one image.

    Attributes
    ----------
    ids
        ``(n,)`` corner ids (index into :meth:`Board.object_points`).
    image_points
        ``(n, 2)`` corner positions (px).
    """

    ids: np.ndarray
    image_points: np.ndarray


def subpixel_half_window(corners: np.ndarray, board: Board) -> int:
    """Half window (px) of ``cv2.cornerSubPix`` derived from the corner spacing in the image.

    A quarter of the smallest distance between neighbouring corners (so the window never
    reaches the next corner), clipped to 2-11 px.
    """
    pts = corners.reshape(board.board_y, board.board_x, 2)
    dx = np.linalg.norm(np.diff(pts, axis=1), axis=-1).min()
    dy = np.linalg.norm(np.diff(pts, axis=0), axis=-1).min()
    return int(np.clip(round(0.25 * min(dx, dy)), 2, 11))


def detect_checkerboard(gray: np.ndarray, board: Board) -> Detection | None:
    """Inner corners of a checkerboard in a grey image, refined to sub-pixel, or None."""
    import cv2

    size = (board.board_x, board.board_y)
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    small = max(gray.shape) > 1600
    scale = 1600 / max(gray.shape) if small else 1.0
    img = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if small else gray
    ok, corners = cv2.findChessboardCorners(img, size, flags)
    if not ok:
        ok, corners = cv2.findChessboardCornersSB(img, size, cv2.CALIB_CB_NORMALIZE_IMAGE)
        if not ok:
            return None
    corners = np.asarray(corners, dtype=np.float32).reshape(-1, 1, 2) / scale
    half = subpixel_half_window(corners.reshape(-1, 2), board)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    corners = cv2.cornerSubPix(gray, corners, (half, half), (-1, -1), crit)
    pts = _orient_checkerboard(gray, np.asarray(corners, float).reshape(-1, 2), board)
    return Detection(ids=np.arange(board.n_corners), image_points=pts)


def _orient_checkerboard(gray: np.ndarray, pts: np.ndarray, board: Board) -> np.ndarray:
    """Order corners so that the square beyond corner 0 is the darker end of the board.

    OpenCV may return a checkerboard's corners in either of two opposite orders; with one
    even and one odd side the two outer corner squares differ in colour, which fixes the
    order in every camera alike (the same physical corner is corner 0 everywhere).
    """
    if (board.board_x + board.board_y) % 2 == 0:
        return pts
    grid = pts.reshape(board.board_y, board.board_x, 2)

    def outer(p0: np.ndarray, px: np.ndarray, py: np.ndarray) -> float:
        q = p0 - 0.25 * (px - p0) - 0.25 * (py - p0)  # inside the outer square, even a cropped one
        x, y = int(round(q[0])), int(round(q[1]))
        if not (0 <= x < gray.shape[1] and 0 <= y < gray.shape[0]):
            return np.nan
        return float(gray[max(0, y - 1): y + 2, max(0, x - 1): x + 2].mean())

    first = outer(grid[0, 0], grid[0, 1], grid[1, 0])
    last = outer(grid[-1, -1], grid[-1, -2], grid[-2, -1])
    if np.isfinite(first) and np.isfinite(last) and first > last:
        return pts[::-1].copy()
    return pts


def detect_charuco(gray: np.ndarray, board: Board, *, legacy: bool = False) -> Detection | None:
    """ChArUco corners (with their ids) in a grey image, or None when fewer than 4."""
    import cv2

    detector = cv2.aruco.CharucoDetector(board.opencv_board(legacy=legacy))
    corners, ids, _, _ = detector.detectBoard(gray)
    if ids is None or len(ids) < 4:
        return None
    return Detection(ids=np.asarray(ids).ravel().astype(int), image_points=np.asarray(corners, float).reshape(-1, 2))


def detect_board(gray: np.ndarray, board: Board) -> Detection | None:
    """Board corners in one grey image (checkerboard or ChArUco, per ``board.kind``)."""
    if board.kind == "checkerboard":
        return detect_checkerboard(gray, board)
    return detect_charuco(gray, board, legacy=bool(board.legacy_pattern))


def choose_legacy_pattern(grays: list[np.ndarray], board: Board) -> Board:
    """For a ChArUco board with ``legacy_pattern=None``: the layout finding more corners.

    Tries both layouts on up to 3 images and logs nothing itself (the caller reports).
    """
    if board.kind != "charuco" or board.legacy_pattern is not None:
        return board
    counts = {}
    for legacy in (False, True):
        counts[legacy] = sum(
            len(d.ids) for g in grays[:3] if (d := detect_charuco(g, board, legacy=legacy)) is not None
        )
    return board.model_copy(update={"legacy_pattern": counts[True] > counts[False]})


def draw_board(board: Board, px_per_mm: float, margin_mm: float = 0.0) -> np.ndarray:
    """A flat grey image of the board (uint8), ``px_per_mm`` px per mm, origin at the first corner.

    Returns the image; a board point ``(X, Y)`` mm (:meth:`Board.object_points`) lies at
    pixel ``((X + offset) * px_per_mm, (Y + offset) * px_per_mm)`` with ``offset``
    = :func:`board_image_offset_mm`.
    """
    import cv2

    s = board.square_length
    if board.kind == "charuco":
        w_mm, h_mm = board.board_x * s + 2 * margin_mm, board.board_y * s + 2 * margin_mm
        size = (int(round(w_mm * px_per_mm)), int(round(h_mm * px_per_mm)))
        return board.opencv_board().generateImage(size, marginSize=int(round(margin_mm * px_per_mm)))
    nx, ny = board.board_x + 1, board.board_y + 1  # squares
    w_px = int(round((nx * s + 2 * margin_mm) * px_per_mm))
    h_px = int(round((ny * s + 2 * margin_mm) * px_per_mm))
    img = np.full((h_px, w_px), 255, np.uint8)
    for j in range(ny):
        for i in range(nx):
            if (i + j) % 2 == 0:
                x0 = (margin_mm + i * s) * px_per_mm
                y0 = (margin_mm + j * s) * px_per_mm
                cv2.rectangle(img, (int(round(x0)), int(round(y0))),
                              (int(round(x0 + s * px_per_mm)) - 1, int(round(y0 + s * px_per_mm)) - 1), 0, -1)
    return img


def board_image_offset_mm(board: Board, margin_mm: float = 0.0) -> float:
    """Offset (mm) from the board image's top-left pixel corner to object point (0, 0).

    Checkerboard object points start at the first inner corner (one square in); ChArUco
    object points (OpenCV) start at the board's outer corner.
    """
    return margin_mm + (board.square_length if board.kind == "checkerboard" else 0.0)
