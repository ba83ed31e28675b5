"""Video frames for the dashboard pages, sent as compressed images (no Streamlit, tested alone).

A frame goes to the browser as JPEG bytes (``st.image``), about 30-80 kB for a 640x480
frame, instead of a plotly ``Image`` trace whose pixels travel as a JSON array (1.6 MB).
Keypoints are drawn into the pixels with OpenCV, so a frame step redraws one image.

- :class:`SharedReader`: one :class:`pose.video.VideoReader` per video, kept open between
  reruns (``st.cache_resource``) and guarded by a lock (a reader holds one decoder and is
  not thread-safe; Streamlit runs each browser session in its own thread).
- :func:`draw_keypoints`: keypoints on a frame, confident ones filled in their body-part
  colour, those below the cut-off as red crosses.
- :func:`arena_canvas`: a plain picture of the arena outline when no video is available.
- :func:`encode_jpeg`: RGB array -> JPEG bytes.
- :func:`colour_key_html`: the body parts' colours as a key to show under the frame (names
  written into the frame overlap when the keypoints are close, as on a mouse seen from above).
- :class:`SliderFrame`: the frame a session is on, kept apart from the frame slider's value the
  browser sends back (a stale echo of it would undo a step).
"""

from __future__ import annotations

import html
import threading
from collections.abc import MutableMapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from dashboard.labelling.figure import keypoint_colour

LOW_CONFIDENCE_RGB = (213, 94, 0)  # Okabe-Ito vermillion


class SharedReader:
    """A video reader shared by the sessions of one server, one frame read at a time.

    Parameters
    ----------
    path
        Video file.
    """

    def __init__(self, path: str | Path) -> None:
        from pose.video import VideoReader

        self._reader = VideoReader(path)
        self._lock = threading.Lock()
        self.n_frames = self._reader.n_frames
        self.width, self.height = self._reader.width, self._reader.height

    def read(self, index: int) -> np.ndarray:
        """RGB frame ``index``, (height, width, 3) uint8 (sequential reads never seek)."""
        with self._lock:
            return self._reader.read(int(index))

    def close(self) -> None:
        with self._lock:
            self._reader.close()


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of an RGB ``uint8`` image."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("could not encode the frame as JPEG")
    return buf.tobytes()


def marker_radius_px(width: int, height: int) -> int:
    """Keypoint marker radius: about 1/120 of the frame's larger side, at least 3 px."""
    return max(3, int(round(max(width, height) / 120)))


def draw_keypoints(rgb: np.ndarray, xy: np.ndarray, confidence: np.ndarray, names: Sequence[str],
                   cutoff: float, *, labels: bool = True) -> np.ndarray:
    """Keypoints of one frame drawn on a copy of ``rgb``.

    Parameters
    ----------
    rgb
        Frame, (height, width, 3) uint8.
    xy
        Positions, (2, n_keypoints) px (the pose Dataset's ``space x keypoint`` order).
    confidence
        (n_keypoints,); NaN counts as below the cut-off.
    names
        Keypoint names, written beside the markers when ``labels``.
    cutoff
        Confidence cut-off: keypoints below it are drawn as crosses in vermillion.

    Returns
    -------
    numpy.ndarray
        The drawn frame (same shape as ``rgb``).
    """
    out = np.ascontiguousarray(rgb).copy()
    r = marker_radius_px(out.shape[1], out.shape[0])
    scale = max(0.35, r / 9)
    for k, name in enumerate(names):
        x, y = float(xy[0, k]), float(xy[1, k])
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        c = (int(round(x)), int(round(y)))
        low = not (np.nan_to_num(confidence[k], nan=-1.0) >= cutoff)
        if low:
            cv2.drawMarker(out, c, LOW_CONFIDENCE_RGB, cv2.MARKER_TILTED_CROSS, 2 * r, 2, cv2.LINE_AA)
        else:
            cv2.circle(out, c, r, keypoint_colour(k), -1, cv2.LINE_AA)
            cv2.circle(out, c, r, (0, 0, 0), 1, cv2.LINE_AA)
        if labels:
            cv2.putText(out, str(name), (c[0] + r + 2, c[1] - r), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), 1, cv2.LINE_AA)
    return out


def arena_canvas(corners_px: Sequence[Sequence[float]] | None, xy: np.ndarray) -> np.ndarray:
    """A grey canvas holding the arena outline (or the keypoints' extent), for animals without video."""
    pts = np.asarray(corners_px, float) if corners_px else np.asarray(xy, float).T
    pts = pts[np.isfinite(pts).all(axis=1)] if pts.size else np.zeros((1, 2))
    if not len(pts):
        pts = np.zeros((1, 2))
    w = int(np.clip(np.ceil(pts[:, 0].max() + 20), 64, 4096))
    h = int(np.clip(np.ceil(pts[:, 1].max() + 20), 64, 4096))
    out = np.full((h, w, 3), 40, np.uint8)
    if corners_px:
        poly = np.round(np.asarray(corners_px, float)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [poly], True, (170, 170, 170), 1, cv2.LINE_AA)
    return out


def colour_key_html(names: Sequence[str], cutoff: float) -> str:
    """HTML of a colour key: a disc in each body part's colour and its name, then the cross of
    the keypoints below ``cutoff``. Names are escaped (they come from the pose file)."""
    def rgb(c: Sequence[int]) -> str:
        return "rgb({},{},{})".format(*c)

    items = [f'<span style="white-space:nowrap;margin-right:0.9em"><span style="color:{rgb(keypoint_colour(k))};'
             f'font-size:1.2em">&#9679;</span>&nbsp;{html.escape(str(n))}</span>' for k, n in enumerate(names)]
    items.append(f'<span style="white-space:nowrap"><span style="color:{rgb(LOW_CONFIDENCE_RGB)};font-weight:bold">'
                 f'&#215;</span>&nbsp;below {cutoff:g}</span>')
    return '<div style="font-size:0.85em;line-height:1.7">' + " ".join(items) + "</div>"


class SliderFrame:
    """The frame a session is on, with the frame slider's value the browser sends taken in only
    when the user moved it.

    Every rerun request a Streamlit page gets carries the value its browser's slider holds, and
    one sent before the reply to the previous request arrived (a second Next clicked during the
    first one's rerun, a play timer's reruns) still holds an earlier frame. Taken as the frame,
    it undoes the step. The frame is kept under its own key (``<key>_pos``); the values drawn
    into the slider since the browser last echoed the newest are remembered (``<key>_sent``),
    and a value among them is an echo, ignored. Any other value is the user's drag.

    Parameters
    ----------
    state
        The session state (``st.session_state``, or a dict in tests).
    key
        The slider's widget key.
    n_frames
        Frames (slider positions ``0 .. n_frames - 1``).
    """

    #: drawn values kept while the browser may still echo them
    KEEP = 64

    def __init__(self, state: MutableMapping, key: str, n_frames: int) -> None:
        self.state, self.key, self.n = state, key, int(n_frames)
        self._pos, self._sent = f"{key}_pos", f"{key}_sent"

    def current(self) -> int:
        """The session's frame, a drag the browser sent taken in (call it in callbacks and before
        drawing; calling it twice in one run changes nothing)."""
        at = int(self.state.get(self._pos, 0))
        sent = self.state.setdefault(self._sent, [])
        v = self.state.get(self.key)
        if v is not None:
            v = int(v)
            if sent and v == sent[-1]:
                del sent[:-1]  # the browser has caught up
            elif v not in sent:
                at = v
                sent[:] = [v]
        at = int(np.clip(at, 0, self.n - 1))  # another file or animal may have fewer frames
        self.state[self._pos] = at
        return at

    def go(self, at: int) -> None:
        """Make ``at`` the session's frame (a callback's step or jump); drawn by :meth:`draw`."""
        self.state[self._pos] = int(np.clip(int(at), 0, self.n - 1))

    def draw(self, at: int | None = None) -> int:
        """Set the slider's value to the session's frame (or to ``at``), before the slider is made;
        returns that frame."""
        at = self.current() if at is None else int(np.clip(int(at), 0, self.n - 1))
        self.state[self._pos] = at
        self.state[self.key] = at
        sent = self.state.setdefault(self._sent, [])
        if not sent or sent[-1] != at:
            sent.append(at)
            del sent[:-self.KEEP]
        return at
