"""Known answers for the freezing calibration: the noise floor, and thresholds in physical units.

- the jitter estimate gives back the jitter of a synthetic still track, at any frame rate,
  for one keypoint, for a group of independent keypoints (sigma / sqrt(n)) and for a group
  whose jitter moves together (sigma), with dropouts, and for a head that grooms while the
  body rests;
- the chosen window is the one the Rayleigh formula asks for, and a recording made at another
  frame rate or image scale of the same mouse gets the same decisions (mm/s, s).
"""

from __future__ import annotations

import numpy as np
import pytest

from behavior import rules
from behavior.freezing import min_run_frames
from behavior.noise import estimate_noise_floor, noise_speed, role_jitter, role_speed, slope_s2
from pose.dataset import from_numpy

KPS = ["Nose", "Left Ear", "Right Ear", "Mid-Back", "Tailbase"]
#: body offsets (mm) of the 5 keypoints from the body centre
OFFSETS_MM = np.array([[12.5, 0], [9.4, -2.5], [9.4, 2.5], [0, 0], [-9.4, 0]])


def _still(n: int, sigma: float, *, n_kp: int = 3, common: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = 200 + 10 * np.arange(n_kp)[None, None, :]
    noise = rng.normal(0, sigma, (n, 2, 1 if common else n_kp))
    return base + np.broadcast_to(noise, (n, 2, n_kp))


@pytest.mark.parametrize("fps", [15.0, 30.0, 50.0, 100.0])
@pytest.mark.parametrize("sigma", [0.5, 1.5, 3.0])
def test_role_jitter_gives_back_the_known_jitter_at_any_fps(fps, sigma):
    n = int(120 * fps)
    ind = _still(n, sigma, n_kp=3)
    assert role_jitter(ind)[0] == pytest.approx(sigma / np.sqrt(3), rel=0.06)
    assert role_jitter(_still(n, sigma, n_kp=3, common=True))[0] == pytest.approx(sigma, rel=0.06)
    assert role_jitter(ind[:, :, :1])[0] == pytest.approx(sigma, rel=0.06)
    # and through the recording-level estimate, still frames chosen by speed at this fps
    ds = from_numpy(ind[..., None], np.full((n, 3, 1), 0.99), keypoints=["Nose", "Left Ear", "Right Ear"],
                    fps=fps, px_per_mm=3.2)
    est = estimate_noise_floor(ds, {"head": ["Nose", "Left Ear", "Right Ear"]})
    assert est["sigma_px"]["head"] == pytest.approx(sigma / np.sqrt(3), rel=0.1)
    assert est["keypoint_sigma_px"]["Nose"] == pytest.approx(sigma, rel=0.1)


@pytest.mark.parametrize("fps", [15.0, 50.0])
def test_head_jitter_is_not_a_grooming_head_while_the_body_rests(fps):
    """Body still throughout; in 40 % of the frames the head keypoints also stroke at 4 Hz
    (2 mm, a grooming head): near the Nyquist frequency at 15 fps, where a 5-frame residual
    cannot tell it from jitter. The head's jitter is measured where the head is slow too: the
    known sigma / sqrt(3) comes back; a head that never moves gives it back unbiased."""
    n, sigma, ppm = int(240 * fps), 1.0, 3.2
    rng = np.random.default_rng(5)
    pos = np.empty((n, 2, len(KPS)))
    for k, (dx, dy) in enumerate(OFFSETS_MM):
        pos[:, 0, k], pos[:, 1, k] = (60.0 + dx) * ppm, (60.0 + dy) * ppm
    quiet = pos + rng.normal(0, sigma, pos.shape)
    t = np.arange(n) / fps
    groom = (t % 10.0) < 4.0  # 4 s of every 10 s
    stroke = np.where(groom, 2.0 * ppm * np.sin(2 * np.pi * 4.0 * t), 0.0)
    moving = quiet.copy()
    moving[:, 0, :3] += stroke[:, None]
    roles = {"head": KPS[:3], "body": KPS[3:]}
    for track in (quiet, moving):
        ds = from_numpy(track[..., None], np.full((n, len(KPS), 1), 0.99), keypoints=KPS, fps=fps,
                        px_per_mm=ppm)
        est = estimate_noise_floor(ds, roles)["sigma_px"]
        assert est["head"] == pytest.approx(sigma / np.sqrt(3), rel=0.1), est
        assert est["body"] == pytest.approx(sigma / np.sqrt(2), rel=0.1), est


def test_role_jitter_and_speed_survive_dropouts():
    n, sigma = 6000, 1.0
    xyk = _still(n, sigma, n_kp=4, seed=3)
    rng = np.random.default_rng(4)
    xyk[np.repeat((rng.random((n, 4)) < 0.1)[:, None, :], 2, axis=1)] = np.nan
    # a residual needs 5 known frames (0.9**5 = 59 % per keypoint), so frames average 2-4
    # keypoints: sd between sigma / sqrt(4) and sigma / sqrt(2)
    est = role_jitter(xyk)[0]
    assert sigma / 2 < est < sigma / np.sqrt(2)
    # a group moving at a known velocity keeps it exactly while one keypoint drops out
    t = np.arange(300) / 30.0
    move = 200 + np.stack([60 * t, -30 * t], axis=1)[:, :, None] + 10 * np.arange(3)[None, None, :]
    move[100:140, :, 1] = np.nan  # one of three keypoints occluded for 1.3 s
    sp = role_speed(move, fps=30.0, half_width=3)
    np.testing.assert_allclose(sp[3:-3], np.hypot(60, 30), rtol=1e-9)
    move[100:140, :, 2] = np.nan  # two of three: not enough to say
    assert np.isnan(role_speed(move, fps=30.0, half_width=3)[110:130]).all()


def _mouse(speed_mm_s: np.ndarray, *, fps: float, px_per_mm: float, jitter_mm: float = 0.0,
           seed: int = 0):
    """A rigid 5-point mouse translating along x at ``speed_mm_s`` (per frame), jitter in mm."""
    rng = np.random.default_rng(seed)
    x_mm = np.cumsum(speed_mm_s) / fps + 30.0
    pos = np.empty((x_mm.size, 2, len(KPS)))
    for k, (dx, dy) in enumerate(OFFSETS_MM):
        pos[:, 0, k] = x_mm + dx
        pos[:, 1, k] = 60.0 + dy
    pos = (pos + rng.normal(0, jitter_mm, pos.shape)) * px_per_mm
    return from_numpy(pos, np.full((x_mm.size, len(KPS)), 0.99), keypoints=KPS, fps=fps,
                      px_per_mm=px_per_mm)


def _expected_half_width(sigma_px: float, fps: float, px_per_mm: float, enter: float = 10.0) -> int:
    """The shortest ``h`` (window >= 0.2 s) at which Rayleigh noise exceeds ``enter`` in < 1 %."""
    h = max(1, int(np.ceil((0.2 * fps - 1) / 2 - 1e-9)))
    while sigma_px * fps / np.sqrt(slope_s2(h)) * np.sqrt(-2 * np.log(0.01)) / px_per_mm > enter:
        h += 1
    return h


@pytest.mark.parametrize("fps", [15.0, 30.0, 60.0])
@pytest.mark.parametrize("px_per_mm", [1.6, 3.2])
def test_window_and_thresholds_follow_fps_px_per_mm_and_noise(fps, px_per_mm):
    still = np.zeros(int(60 * fps))
    jitter_mm = 0.3
    cal = rules.calibrate_freezing(_mouse(still, fps=fps, px_per_mm=px_per_mm, jitter_mm=jitter_mm))
    sigma = max(cal.noise_sigma_px.values())
    # the head is 3 independent keypoints, the body 2: the body's average is the noisier
    assert sigma == pytest.approx(jitter_mm * px_per_mm / np.sqrt(2), rel=0.1)
    h = _expected_half_width(sigma, fps, px_per_mm)
    assert cal.window_frames == 2 * h + 1 and cal.window_s == pytest.approx((2 * h + 1) / fps)
    assert (cal.enter_speed_mm_s, cal.exit_speed_mm_s) == (10.0, 12.5)
    assert noise_speed(sigma, fps=fps, half_width=h) / px_per_mm <= 10.0
    assert cal.min_run_frames == round(fps) - h
    # much more noise than 0.5 s can average: thresholds raised by exactly the noise's factor
    loud = rules.calibrate_freezing(_mouse(still, fps=fps, px_per_mm=px_per_mm, jitter_mm=4.0))
    s_loud = max(loud.noise_sigma_px.values())
    h_max = max(1, int(np.ceil((0.5 * fps - 1) / 2 - 1e-9)))
    assert loud.window_frames == 2 * h_max + 1
    assert loud.enter_speed_mm_s == pytest.approx(noise_speed(s_loud, fps=fps, half_width=h_max) / px_per_mm)
    assert loud.exit_speed_mm_s == pytest.approx(1.25 * loud.enter_speed_mm_s)
    assert any("raised" in r for r in loud.reasons)


def test_same_mouse_same_answer_at_any_fps_and_image_scale():
    """A still mouse, then creeping at 25 mm/s, then still, then walking: the freezing bouts (in
    seconds) do not depend on the frame rate or px/mm the recording was made with."""
    def speed(fps: float) -> np.ndarray:
        t = np.arange(int(20 * fps)) / fps
        return np.select([t < 4, t < 8, t < 12], [0.0, 25.0, 0.0], 80.0)

    bouts = set()
    for fps in (15.0, 30.0, 50.0):
        for ppm in (1.6, 3.2):
            fz = rules.detect_freezing(_mouse(speed(fps), fps=fps, px_per_mm=ppm, jitter_mm=0.2)).values
            t = np.arange(fz.size) / fps
            assert fz[(t > 0.5) & (t < 3.5)].all() and fz[(t > 8.5) & (t < 11.5)].all()
            assert not fz[(t > 4.5) & (t < 7.5)].any() and not fz[t > 12.5].any()
            bouts.add(tuple(np.round(t[np.flatnonzero(np.diff(fz.astype(int)))], 0)))
    assert len(bouts) == 1, bouts


def test_min_run_frames_known_values():
    assert min_run_frames(1.0, 50.0, 11) == 45  # 1 s at 50 fps less half a 0.22 s window
    assert min_run_frames(1.0, 30.0, 1) == 30   # no window, no correction
    assert min_run_frames(1.0, 15.0, 5) == 13
    assert min_run_frames(0.05, 15.0, 9) == 1


def test_median_displacement_speed_ignores_gross_errors_and_knows_its_noise():
    from behavior.posture import median_displacement_speed, noise_speed_from_sd

    fps = 30.0
    t = np.arange(900) / fps
    xyk = 100 + np.stack([40 * t, 30 * t], axis=1)[:, :, None] + 5 * np.arange(2)[None, None, :]
    rng = np.random.default_rng(0)
    bad = rng.random((900, 2)) < 0.1  # 10 % of samples 20-150 px off
    noisy = xyk.copy()
    noisy[:, 0][bad] += rng.uniform(20, 150, int(bad.sum()))
    sp, _ = median_displacement_speed(noisy, fps=fps, window_s=0.5)
    assert np.nanmedian(sp) == pytest.approx(50.0, rel=0.02)
    assert np.nanpercentile(sp, 95) < 60.0  # a slope fit would carry the jumps
    # still group, white jitter: the reported factor predicts the 99 % noise speed
    still = 100 + rng.normal(0, 2.0, (20000, 2, 2))
    sp, factor = median_displacement_speed(still, fps=fps, window_s=0.5)
    sigma_group = 2.0 / np.sqrt(2)
    assert np.nanquantile(sp, 0.99) == pytest.approx(noise_speed_from_sd(factor * sigma_group), rel=0.15)
