"""Rendering speed of the virtual mouse vs. the cost of just encoding blank frames.

Run (the numbers in the issue's closing note come from this command)::

    python3 bench/render_speed.py --seconds 20

Everything runs on one core (OpenCV and the H.264 encoder limited to one thread). For each
nuisance level ("none", "mild", "heavy") it renders an open-field session at 640x480, 30 fps
and reports frames per second of the frame loop (draw + nuisances + encode), both per
wall-clock second (``wall_fps``, depends on what else runs on the machine) and per CPU
second of this process (``cpu_fps``: what one dedicated core achieves). The kinematic
simulation and the output files are in ``total_s`` (wall). Baseline, measured in the same
run: encoding the same number of blank (uniform grey) frames with the same encoder and
quality (``blank_cpu_fps``). ``vs_blank`` = cpu_fps / blank_cpu_fps; ``x_realtime`` =
cpu_fps / video fps (>= 1: faster than real time on one core).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pose.synthetic.encode import VideoEncoder  # noqa: E402
from pose.synthetic.nuisance import NuisanceConfig  # noqa: E402
from pose.synthetic.render import render_gait, render_open_field  # noqa: E402


def blank_encode_fps(path: Path, n: int, fps: float, width: int, height: int, crf: int
                     ) -> tuple[float, float]:
    """(wall, CPU) frames per second of encoding ``n`` uniform grey frames (the baseline)."""
    frame = np.full((height, width, 3), 200, np.uint8)
    t0, c0 = time.perf_counter(), time.process_time()
    with VideoEncoder(path, fps, width, height, crf=crf, threads=1) as enc:
        for _ in range(n):
            enc.write(frame.copy())
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    n = int(round(args.seconds * args.fps))
    print(f"open field {args.width}x{args.height} @ {args.fps:g} fps, {n} frames, one core")
    header = (f"{'scene':12s} {'nuisance':8s} {'crf':>4s} {'wall_fps':>8s} {'cpu_fps':>8s} "
              f"{'blank_cpu_fps':>13s} {'vs_blank':>8s} {'x_realtime':>10s} {'total_s':>8s}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for level in ("none", "mild", "heavy"):
            cfg = NuisanceConfig.preset(level)
            _, blank = blank_encode_fps(Path(tmp) / f"blank_{level}.mp4", n, args.fps,
                                        args.width, args.height, cfg.crf)
            t0 = time.perf_counter()
            s = render_open_field(Path(tmp) / level, args.seconds, 0, args.width, args.height,
                                  args.fps, cfg, n_label_frames=20)
            _row("open-field", level, cfg.crf, s, blank, args.fps, time.perf_counter() - t0)
        cfg = NuisanceConfig.preset("mild")
        n_gait = int(round(args.seconds / 2 * 100))
        _, blank = blank_encode_fps(Path(tmp) / "blank_gait.mp4", n_gait, 100, 640, 360, cfg.crf)
        t0 = time.perf_counter()
        s = render_gait(Path(tmp) / "gait", args.seconds / 2, 0, 640, 360, 100, cfg)
        _row("gait-side", "mild", cfg.crf, s, blank, 100, time.perf_counter() - t0)
        print("(gait: side view 640x360 at 100 fps, so x_realtime is against 100 fps)")


def _row(scene: str, level: str, crf: int, s, blank_cpu: float, fps: float, total: float
         ) -> None:
    print(f"{scene:12s} {level:8s} {crf:4d} {s.render_fps:8.1f} {s.render_cpu_fps:8.1f} "
          f"{blank_cpu:13.1f} {s.render_cpu_fps / blank_cpu:8.2f} "
          f"{s.render_cpu_fps / fps:10.2f} {total:8.1f}")


if __name__ == "__main__":
    main()
