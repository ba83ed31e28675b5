"""Drawing the virtual mouse with OpenCV: top/bottom view and side view, straight from keypoints.

Every body part is drawn at its keypoint (the truth is what is drawn): the trunk is a
smooth outline around the spine tail base - body centre - neck - snout, ears are ellipses
centred on the ear keypoints, paws are pads centred on the paw keypoints, the nose tip sits
on the snout and the tail runs from tail base to tail tip. Work happens in a small region
of interest around the mouse, so the cost does not grow with the frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BGR = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    """Colours (BGR) of one coat."""

    body: BGR
    sheen: BGR
    tail: BGR
    ear: BGR
    ear_inner: BGR
    paw: BGR
    nose: BGR
    eye: BGR


PALETTES: dict[str, Palette] = {
    # C57BL/6: black coat, grey-pink tail, pink paws and nose
    "black": Palette(body=(30, 28, 28), sheen=(78, 74, 74), tail=(112, 110, 128),
                     ear=(52, 50, 58), ear_inner=(120, 118, 158), paw=(158, 158, 205),
                     nose=(140, 135, 190), eye=(10, 10, 10)),
    # agouti / brown coat
    "agouti": Palette(body=(52, 78, 104), sheen=(105, 135, 165), tail=(120, 135, 165),
                      ear=(70, 90, 120), ear_inner=(135, 140, 190), paw=(165, 170, 215),
                      nose=(150, 145, 200), eye=(15, 15, 15)),
    # belly seen from below through a glass floor
    "ventral": Palette(body=(170, 178, 200), sheen=(205, 212, 232), tail=(140, 150, 185),
                       ear=(120, 130, 160), ear_inner=(150, 155, 200), paw=(150, 140, 225),
                       nose=(150, 145, 215), eye=(25, 25, 25)),
}

# Half-width of the trunk (mm) along the spine, from tail base (0) to snout (1).
_WIDTH_U = np.array([0.0, 0.06, 0.2, 0.4, 0.55, 0.66, 0.74, 0.84, 0.93, 1.0])
_WIDTH_MM = np.array([5.0, 12.0, 15.5, 15.0, 12.5, 10.0, 10.0, 8.0, 4.8, 1.5])


def make_fur_texture(seed: int, size_px: int = 192) -> np.ndarray:
    """Fur-like texture (float32 in about [-1, 1]): fine hair streaks along x.

    Rotated with the body each frame, so the streaks follow the spine.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((size_px, size_px)).astype(np.float32)
    streaks = cv2.GaussianBlur(noise, (9, 1), sigmaX=3.0, sigmaY=0.4)
    clumps = cv2.GaussianBlur(rng.standard_normal((size_px, size_px)).astype(np.float32),
                              (0, 0), sigmaX=3.0)
    tex = 1.6 * streaks + 2.0 * clumps
    return np.clip(tex / (3 * tex.std() + 1e-6), -1, 1).astype(np.float32)


def _catmull_rom(points: np.ndarray, n_per_segment: int) -> np.ndarray:
    """Smooth curve through ``points`` (k, 2), k >= 2, with mirrored end tangents."""
    p = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    t = np.linspace(0, 1, n_per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    out.append(points[-1][None])
    return np.vstack(out)


def _outline(spine: np.ndarray, half_width_px: np.ndarray) -> np.ndarray:
    """Closed polygon around a polyline with a half-width per vertex."""
    tangent = np.gradient(spine, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    left = spine + normal * half_width_px[:, None]
    right = spine - normal * half_width_px[:, None]
    return np.vstack([left, right[::-1]])


def _bezier(p0: np.ndarray, c: np.ndarray, p1: np.ndarray, n: int) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * p1


def _tail_curve(tail_base: np.ndarray, tail_tip: np.ndarray, body_center: np.ndarray,
                n: int = 14) -> np.ndarray:
    """The tail leaves the body along the spine and bends toward its tip."""
    axis = tail_base - body_center
    axis /= max(float(np.linalg.norm(axis)), 1e-9)
    length = float(np.linalg.norm(tail_tip - tail_base))
    return _bezier(tail_base, tail_base + axis * 0.45 * length, tail_tip, n)


def _draw_tail(img: np.ndarray, curve: np.ndarray, root_half_px: float, colour: BGR) -> None:
    """A smooth tapered tail along ``curve`` (root first), with a round tip at the last point."""
    tip_half = max(1.0, 0.3 * root_half_px)
    half = np.linspace(max(root_half_px, 1.0), tip_half, len(curve))
    cv2.fillPoly(img, [_fix(_outline(curve, half))], colour, cv2.LINE_AA, 4)
    cv2.circle(img, tuple(int(v) for v in _fix(curve[-1])), int(round(tip_half * 16)), colour, -1,
               cv2.LINE_AA, 4)


def _fix(p: np.ndarray, shift: int = 4) -> np.ndarray:
    """Fixed-point integer coordinates for OpenCV sub-pixel drawing."""
    return np.round(np.asarray(p) * (1 << shift)).astype(np.int32)


def _ellipse(img: np.ndarray, centre: np.ndarray, axes_px: tuple[float, float], angle_deg: float,
             colour: BGR) -> None:
    cv2.ellipse(img, tuple(int(v) for v in _fix(centre)),
                (max(1, int(round(axes_px[0] * 16))), max(1, int(round(axes_px[1] * 16)))),
                angle_deg, 0, 360, colour, -1, cv2.LINE_AA, 4)


def _region(frame: np.ndarray, kp: dict[str, np.ndarray], pad_px: float
            ) -> tuple[tuple[int, int, int, int], np.ndarray | None, dict[str, np.ndarray]]:
    """Bounding box of the keypoints plus ``pad_px``, clipped to the frame; the ROI view and
    the keypoints in ROI coordinates (ROI None when the box is empty)."""
    h, w = frame.shape[:2]
    pts = np.array(list(kp.values()))
    x0 = int(max(0, np.floor(pts[:, 0].min() - pad_px)))
    y0 = int(max(0, np.floor(pts[:, 1].min() - pad_px)))
    x1 = int(min(w, np.ceil(pts[:, 0].max() + pad_px)))
    y1 = int(min(h, np.ceil(pts[:, 1].max() + pad_px)))
    if x1 <= x0 or y1 <= y0:
        return (0, 0, 0, 0), None, {}
    o = np.array([x0, y0], dtype=float)
    return (x0, y0, x1, y1), frame[y0:y1, x0:x1], {n: p - o for n, p in kp.items()}


def _shade_body(roi: np.ndarray, poly: np.ndarray, axis: np.ndarray, px_per_mm: float,
                texture: np.ndarray, palette: Palette, shadow: bool) -> None:
    """Composite the furry, softly shaded trunk ``poly`` (ROI px) into ``roi``, in place.

    Works in the trunk's own bounding box (the tail's extent is not shaded).
    """
    sigma = max(1.0, 4.0 * px_per_mm)
    off = max(1, int(round(2.5 * px_per_mm))) if shadow else 0
    pad = int(np.ceil(2 * sigma)) + off + 2
    h, w = roi.shape[:2]
    bx0 = max(0, int(np.floor(poly[:, 0].min())) - pad)
    by0 = max(0, int(np.floor(poly[:, 1].min())) - pad)
    bx1 = min(w, int(np.ceil(poly[:, 0].max())) + pad)
    by1 = min(h, int(np.ceil(poly[:, 1].max())) + pad)
    if bx1 <= bx0 or by1 <= by0:
        return
    sub = roi[by0:by1, bx0:bx1]
    rh, rw = sub.shape[:2]
    mask = np.zeros((rh, rw), np.uint8)
    cv2.fillPoly(mask, [_fix(poly - np.array([bx0, by0]))], 255, cv2.LINE_AA, 4)
    # soft shading: rounded body (brighter along the spine), slightly fuzzy edge
    depth = cv2.GaussianBlur(mask, (0, 0), sigma).astype(np.float32) * (1 / 255.0)
    alpha = cv2.GaussianBlur(mask, (3, 3), 0.8).astype(np.float32) * (1 / 255.0)
    heading = float(np.degrees(np.arctan2(axis[1], axis[0])))
    centre = (texture.shape[1] / 2.0, texture.shape[0] / 2.0)
    rot = cv2.getRotationMatrix2D(centre, -heading, 1.0)
    rot[:, 2] += np.array([rw / 2.0, rh / 2.0]) - np.array(centre)
    fur = cv2.warpAffine(texture, rot, (rw, rh), borderMode=cv2.BORDER_REFLECT)
    body = np.asarray(palette.body, np.float32)
    sheen = np.asarray(palette.sheen, np.float32)
    light = 0.55 * depth * depth + 0.25 * fur * depth
    colour = body + (sheen - body) * light[..., None] + (22.0 * fur)[..., None]
    keep = 1.0 - alpha
    if off:  # the body's own soft blur, shifted down-right, darkens the floor
        sh = np.zeros_like(depth)
        if off < min(rh, rw):
            sh[off:, off:] = depth[:-off, :-off]
        keep *= 1.0 - 0.35 * sh
    out = sub * keep[..., None] + colour * alpha[..., None]
    np.clip(out, 0, 255, out=out)
    sub[:] = out.astype(np.uint8)


def draw_mouse_top(
    frame: np.ndarray,
    kp: dict[str, np.ndarray],
    px_per_mm: float,
    texture: np.ndarray,
    palette: Palette,
    *,
    rear: float = 0.0,
    shadow: bool = True,
) -> tuple[int, int, int, int]:
    """Draw a mouse seen from above (or below) into ``frame`` (H, W, 3) uint8 BGR, in place.

    Parameters
    ----------
    frame
        Image to draw into.
    kp
        Keypoint name -> (x, y) in px: snout, left_ear, right_ear, neck, body_center,
        tail_base, tail_tip and the four paws.
    px_per_mm
        Image scale; body widths are in mm.
    texture
        Fur texture from :func:`make_fur_texture`.
    palette
        Coat colours.
    rear
        0..1 rearing blend: the trunk looks a little wider (closer to the camera).
    shadow
        Draw a soft shadow under the body.

    Returns
    -------
    tuple
        The region of interest ``(x0, y0, x1, y1)`` that was drawn.
    """
    box, roi, k = _region(frame, kp, 18.0 * px_per_mm)
    if roi is None:
        return box

    # tail first (the body covers its root): tapered strokes along a Bezier curve
    _draw_tail(roi, _tail_curve(k["tail_base"], k["tail_tip"], k["body_center"], 20),
               2.0 * px_per_mm, palette.tail)

    spine = _catmull_rom(np.stack([k["tail_base"], k["body_center"], k["neck"], k["snout"]]), 8)
    seg = np.r_[0, np.cumsum(np.linalg.norm(np.diff(spine, axis=0), axis=1))]
    u = seg / max(seg[-1], 1e-9)
    half = np.interp(u, _WIDTH_U, _WIDTH_MM) * px_per_mm * (1 + 0.15 * rear)
    poly = _outline(spine, half)
    _shade_body(roi, poly, k["neck"] - k["tail_base"], px_per_mm, texture, palette, shadow)

    # head details: ears, eyes, nose tip; then the paws on top
    fwd = k["snout"] - k["neck"]
    head_deg = float(np.degrees(np.arctan2(fwd[1], fwd[0])))
    ear_r = 5.6 * px_per_mm
    for ear in ("left_ear", "right_ear"):
        _ellipse(roi, k[ear], (ear_r * 0.8, ear_r), head_deg, palette.ear)
        _ellipse(roi, k[ear], (ear_r * 0.45, ear_r * 0.65), head_deg, palette.ear_inner)
    unit = fwd / max(float(np.linalg.norm(fwd)), 1e-9)
    side = np.array([unit[1], -unit[0]])
    for sgn in (1, -1):
        eye = k["neck"] + 0.62 * fwd + sgn * 4.2 * px_per_mm * side
        _ellipse(roi, eye, (1.2 * px_per_mm, 0.9 * px_per_mm), head_deg, palette.eye)
    _ellipse(roi, k["snout"], (1.8 * px_per_mm, 1.6 * px_per_mm), head_deg, palette.nose)
    for paw in ("left_hindpaw", "right_hindpaw", "left_forepaw", "right_forepaw"):
        size = 3.0 if "hind" in paw else 2.4
        _ellipse(roi, k[paw], (size * px_per_mm, size * 0.75 * px_per_mm), head_deg,
                 palette.paw)
    return box


def draw_mouse_side(
    frame: np.ndarray,
    kp: dict[str, np.ndarray],
    px_per_mm: float,
    texture: np.ndarray,
    palette: Palette,
) -> tuple[int, int, int, int]:
    """Draw a mouse seen from its left side (walking to the right) into ``frame``, in place.

    ``kp`` holds the side-view keypoints of :func:`pose.synthetic.simulate_gait`
    (including ``left_hip``, ``left_knee``, ``left_ankle``). Far-side (right) legs are
    drawn darker behind the body. Returns the region of interest drawn.
    """
    box, roi, k = _region(frame, kp, 16.0 * px_per_mm)
    if roi is None:
        return box
    ppm = px_per_mm
    dark = tuple(int(c * 0.6) for c in palette.body)
    far_paw = tuple(int(c * 0.75) for c in palette.paw)
    # far-side legs behind the body
    for paw, root in (("right_hindpaw", k["left_hip"]), ("right_forepaw", k["neck"])):
        root = root + np.array([0, 2.0 * ppm])
        knee = (root + k[paw]) / 2 + np.array([2.5 * ppm, 0])
        cv2.polylines(roi, [_fix(np.stack([root, knee, k[paw]]))], False, dark,
                      max(2, int(3.6 * ppm)), cv2.LINE_AA, 4)
        _ellipse(roi, k[paw], (2.8 * ppm, 1.4 * ppm), 0, far_paw)
    tail = _bezier(k["tail_base"], k["tail_base"] + np.array([-30 * ppm, 4 * ppm]),
                   k["tail_tip"], 20)
    _draw_tail(roi, tail, 1.7 * ppm, palette.tail)
    # trunk: dorsal arc above and belly below the spine
    spine = _catmull_rom(np.stack([k["tail_base"], k["body_center"], k["neck"], k["snout"]]), 8)
    seg = np.r_[0, np.cumsum(np.linalg.norm(np.diff(spine, axis=0), axis=1))]
    u = seg / max(seg[-1], 1e-9)
    up = np.interp(u, [0, 0.1, 0.35, 0.6, 0.7, 0.85, 1.0], [3, 9, 12, 10, 9, 6, 1]) * ppm
    down = np.interp(u, [0, 0.1, 0.4, 0.6, 0.7, 0.85, 1.0], [3, 9, 14, 12, 8, 5, 1.5]) * ppm
    tangent = np.gradient(spine, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)  # points up for rightward
    poly = np.vstack([spine + normal * up[:, None], (spine - normal * down[:, None])[::-1]])
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_fix(poly)], 255, cv2.LINE_AA, 4)
    # near hind limb (thigh in the trunk, shank and foot below) and near foreleg
    limb = np.stack([k["left_hip"], k["left_knee"], k["left_ankle"]])
    cv2.polylines(mask, [_fix(limb)], False, 255, max(2, int(5.5 * ppm)), cv2.LINE_AA, 4)
    cv2.circle(mask, tuple(_fix(k["left_hip"])), int(9 * ppm * 16), 255, -1, cv2.LINE_AA, 4)
    elbow = (k["neck"] + k["left_forepaw"]) / 2 + np.array([-2.0 * ppm, 0])
    fore = np.stack([k["neck"] + np.array([-4 * ppm, 4 * ppm]), elbow, k["left_forepaw"]])
    cv2.polylines(mask, [_fix(fore)], False, 255, max(2, int(4.0 * ppm)), cv2.LINE_AA, 4)
    depth = cv2.GaussianBlur(mask, (0, 0), max(1.0, 3.5 * ppm)).astype(np.float32) / 255.0
    alpha = cv2.GaussianBlur(mask, (3, 3), 0.8).astype(np.float32)[..., None] / 255.0
    rh, rw = mask.shape
    fur = cv2.resize(texture, (rw, rh)) if texture.shape[:2] != (rh, rw) else texture
    body = np.asarray(palette.body, np.float32)
    sheen = np.asarray(palette.sheen, np.float32)
    colour = body + (sheen - body) * (0.55 * depth**2)[..., None] + 22.0 * fur[..., None]
    roi[:] = np.clip(roi * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)
    # near foot and forepaw, ear, eye, nose
    cv2.line(roi, tuple(_fix(k["left_ankle"])), tuple(_fix(k["left_hindpaw"])), palette.paw,
             max(2, int(2.4 * ppm)), cv2.LINE_AA, 4)
    _ellipse(roi, k["left_hindpaw"], (3.2 * ppm, 1.5 * ppm), 0, palette.paw)
    _ellipse(roi, k["left_forepaw"], (2.6 * ppm, 1.4 * ppm), 0, palette.paw)
    _ellipse(roi, k["right_ear"], (3.5 * ppm, 4.5 * ppm), -20, palette.ear)
    _ellipse(roi, k["left_ear"], (3.8 * ppm, 5.0 * ppm), -20, palette.ear)
    _ellipse(roi, k["left_ear"], (2.0 * ppm, 3.0 * ppm), -20, palette.ear_inner)
    eye = k["snout"] + 0.45 * (k["left_ear"] - k["snout"]) + np.array([0, -1.0 * ppm])
    _ellipse(roi, eye, (1.6 * ppm, 1.3 * ppm), 0, palette.eye)
    _ellipse(roi, k["snout"], (1.8 * ppm, 1.6 * ppm), 0, palette.nose)
    return box
