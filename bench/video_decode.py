"""Video decoding speed: pose.video.VideoReader against raw OpenCV and raw PyAV.

Measures, in one run on the same file:

- sequential decoding of every frame to RGB uint8 (fps);
- random access to ``--n-random`` frames in a shuffled order (reads per second), and
  whether each frame equals the one reached by decoding from the start.

Baselines: ``cv2.VideoCapture`` (``read`` + BGR->RGB; random access by
``CAP_PROP_POS_FRAMES``) and raw PyAV (frame threading, ``to_ndarray("rgb24")``; random
access by seeking to the frame's timestamp and decoding forward).

Usage::

    python3 bench/video_decode.py [VIDEO] [--n-random 40] [--repeats 3]

The default video is ``../shared/data/dlc-openfield/videos/m3v1mp4.mp4``.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from pose.video import VideoReader

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/dlc-openfield/videos/m3v1mp4.mp4"


def seq_ours(path: Path) -> int:
    n = 0
    with VideoReader(path) as video:
        for _, batch in video.iter_batches(64):
            n += len(batch)
    return n


def seq_cv2(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    return n


def seq_pyav(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = 0
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            n += 1
    return n


def seq_pyav_no_rgb(path: Path) -> int:
    """The decode ceiling: PyAV decoding without any colour conversion."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def rand_ours(path: Path, indices: np.ndarray, out: list) -> int:
    with VideoReader(path) as video:
        for i in indices:
            out.append(_digest(video.read(int(i))))
    return len(indices)


def rand_cv2(path: Path, indices: np.ndarray, out: list) -> int:
    cap = cv2.VideoCapture(str(path))
    for i in indices:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, frame = cap.read()
        out.append(_digest(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)) if ok else None)
    cap.release()
    return len(indices)


def rand_pyav(path: Path, indices: np.ndarray, out: list) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate)
        start = stream.start_time or 0
        for i in indices:
            target = start + int(round(i / fps / stream.time_base))
            container.seek(target, stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is not None and frame.pts >= target:
                    out.append(_digest(frame.to_ndarray(format="rgb24")))
                    break
    return len(indices)


def _digest(frame: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


def reference_digests(path: Path, indices: np.ndarray) -> list[str]:
    """Digests of the wanted frames decoded sequentially from the start with OpenCV."""
    wanted, found = set(int(i) for i in indices), {}
    cap = cv2.VideoCapture(str(path))
    i = 0
    while len(found) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            found[i] = _digest(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        i += 1
    cap.release()
    return [found.get(int(i), "") for i in indices]


def rate(fn: Callable[[], int], cpu: list[float] | None = None) -> float:
    """Frames per wall-clock second; appends CPU milliseconds per frame to ``cpu``."""
    t0, c0 = time.perf_counter(), time.process_time()
    n = fn()
    wall, used = time.perf_counter() - t0, time.process_time() - c0
    if cpu is not None:
        cpu.append(1000 * used / n)
    return n / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--n-random", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with VideoReader(args.video) as video:
        n_frames = video.n_frames
        desc = f"{args.video.name}: {video.width}x{video.height}, {n_frames} frames, {video.fps:.2f} fps"
    indices = np.random.default_rng(args.seed).integers(0, n_frames, args.n_random)
    reference = reference_digests(args.video, indices)
    readers = [
        ("pose.video.VideoReader", seq_ours, rand_ours),
        ("cv2.VideoCapture (raw)", seq_cv2, rand_cv2),
        ("PyAV (raw)", seq_pyav, rand_pyav),
    ]
    seq_rates: dict[str, list[float]] = {name: [] for name, _, _ in readers}
    rnd_rates: dict[str, list[float]] = {name: [] for name, _, _ in readers}
    seq_cpu: dict[str, list[float]] = {name: [] for name, _, _ in readers}
    exact: dict[str, int] = {}
    for _ in range(args.repeats):  # interleaved, so that a change in machine load hits all alike
        for name, seq, rnd in readers:
            seq_rates[name].append(rate(lambda f=seq: f(args.video), seq_cpu[name]))
            digests: list = []
            rnd_rates[name].append(rate(lambda f=rnd, d=digests: f(args.video, indices, d)))
            exact[name] = sum(d == r for d, r in zip(digests, reference, strict=True))
    rows = [(name, max(seq_rates[name]), max(rnd_rates[name]), exact[name], min(seq_cpu[name]))
            for name, _, _ in readers]
    ceiling_cpu: list[float] = []
    ceiling = max(rate(lambda: seq_pyav_no_rgb(args.video), ceiling_cpu) for _ in range(args.repeats))
    print(desc)
    print(f"random access: {args.n_random} frames (seed {args.seed}); best of {args.repeats} interleaved runs")
    header = f"{'reader':<26}{'sequential fps':>16}{'ratio':>8}{'CPU ms/frame':>14}"
    print(header + f"{'random reads/s':>16}{'ratio':>8}{'random frames exact':>21}")
    seq0, rnd0 = rows[0][1], rows[0][2]
    for name, seq, rnd, correct, cpu in rows:
        print(f"{name:<26}{seq:>16.1f}{seq / seq0:>8.2f}{cpu:>14.2f}{rnd:>16.1f}{rnd / rnd0:>8.2f}"
              f"{f'{correct}/{len(indices)}':>21}")
    print(f"{'PyAV decode only, no RGB':<26}{ceiling:>16.1f}{ceiling / seq0:>8.2f}"
          f"{min(ceiling_cpu):>14.2f}{'-':>16}{'-':>8}{'-':>21}")
    print("ratio: relative to pose.video.VideoReader (a baseline ratio > 1 is faster than ours)")
    print("CPU ms/frame: process CPU time (all threads) per frame, best run; steadier than fps")
    print("when other jobs share the cores")
    print("exact: the frame equals the one decoded sequentially from the start (OpenCV, RGB)")


if __name__ == "__main__":
    main()
