"""CPU cost of one training step per sample, by frozen backbone depth, same run, as ratios.

Times forward + backward + AdamW step of the default network (EfficientNet-Lite0, stride 4,
4 keypoints) on random batches of 8 training crops, in process CPU time, with the backbone's
layers up to output stride 0 (none), 2, 4 or 8 frozen (``TrainConfig.freeze_stride``). Rounds
are interleaved so that machine load hits every variant alike; the table gives the median
CPU-s per sample and the ratio to ``freeze 0`` at the same crop size.

Usage::

    python3 bench/pose_train_step_cost.py --threads 1 --rounds 5
"""

from __future__ import annotations

import argparse
import time

import torch

from pose.pipeline.model import PoseNet, pose_loss

FREEZE = (0, 2, 4, 8)


def step_cost(model: PoseNet, opt: torch.optim.Optimizer, crop: int, batch: int) -> float:
    """CPU seconds per sample of one optimizer step on random data."""
    x = (torch.rand(batch, 3, crop, crop) * 255).contiguous(memory_format=torch.channels_last)
    n = crop // model.stride
    k = model.n_keypoints
    heat, weight = torch.rand(batch, k, n, n), torch.ones(batch, k)
    offs = torch.zeros(batch, 2 * k, n, n)
    t = time.process_time()
    loss = pose_loss(model(x), heat, weight, offs, torch.ones_like(offs))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return (time.process_time() - t) / batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crops", default="160,224,320", help="crop sides (px), the recipe's range")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} thread(s), batch {a.batch}, median of {a.rounds} interleaved "
          "rounds after one warm-up step\n")
    print("| crop px | freeze stride | CPU-s / sample | ratio to freeze 0 |")
    print("|---|---|---|---|")
    for crop in (int(c) for c in a.crops.split(",")):
        runs = {}
        for f in FREEZE:
            torch.manual_seed(0)
            model = PoseNet(4, pretrained=True).to(memory_format=torch.channels_last)
            if f:
                model.freeze_early_layers(f)
            model.train()
            opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
            step_cost(model, opt, crop, a.batch)  # warm-up (allocations, oneDNN primitives)
            runs[f] = (model, opt, [])
        for _ in range(a.rounds):
            for model, opt, times in runs.values():
                times.append(step_cost(model, opt, crop, a.batch))
        med = {f: sorted(t)[len(t) // 2] for f, (_, _, t) in runs.items()}
        for f in FREEZE:
            print(f"| {crop} | {f or 'none'} | {med[f]:.3f} | {med[f] / med[0]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
