"""Network-only inference speed of the pose model variants, same run, as ratios.

Times onnxruntime on random 8-frame batches (no video decode; weights and calibration are
random, which does not change the speed) at full (640x480) and half (320x240) resolution,
for the stride-8 and the stride-4 (default) networks, each in fp32 and int8
(``pose.pipeline.quantize``). Rounds are interleaved so machine load hits every variant
alike; the table gives the median fps and the ratio to ``stride8 fp32`` at the same
resolution.

Usage::

    python3 bench/pose_model_speed.py --threads 2 --rounds 7
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pose.pipeline.model import PoseNet
from pose.pipeline.quantize import quantize_onnx


def sessions(names: list[str], n_keypoints: int, calib_hw: tuple[int, int], threads: int, folder: Path) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    rng = np.random.default_rng(0)
    calib = [rng.uniform(0, 255, (1, 3, *calib_hw)).astype(np.float32) for _ in range(2)]
    out = {}
    for name in names:
        fp32 = folder / f"{name}.onnx"
        stride = int(name.removeprefix("stride"))
        torch.onnx.export(PoseNet(n_keypoints, stride=stride, pretrained=False).eval(), (torch.zeros(1, 3, 256, 256),), str(fp32),
                          input_names=["image"], output_names=["heatmap", "offsets"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}}, opset_version=17,
                          dynamo=False)
        int8 = quantize_onnx(fp32, folder / f"{name}_int8.onnx", calib)
        for tag, path in (("fp32", fp32), ("int8", int8)):
            out[f"{name} {tag}"] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--keypoints", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    names = ["stride8", "stride4"]
    print(f"onnxruntime, {a.threads} threads, batch {a.batch}, median of {a.rounds} interleaved rounds")
    print(f"{'resolution':<11}{'variant':<20}{'fps':>8}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        sess = sessions(names, a.keypoints, (480, 640), a.threads, Path(tmp))
        for h, w in ((480, 640), (240, 320)):
            x = np.random.default_rng(1).uniform(0, 255, (a.batch, 3, h, w)).astype(np.float32)
            for s in sess.values():
                s.run(None, {"image": x})
            times: dict[str, list[float]] = {k: [] for k in sess}
            for _ in range(a.rounds):
                for k, s in sess.items():
                    t0 = time.perf_counter()
                    s.run(None, {"image": x})
                    times[k].append(time.perf_counter() - t0)
            fps = {k: a.batch / float(np.median(v)) for k, v in times.items()}
            for k, v in fps.items():
                print(f"{w}x{h:<6}{k:<20}{v:>8.1f}{v / fps['stride8 fp32']:>8.2f}")


if __name__ == "__main__":
    main()
