"""Spatio-temporal 3D DenseNet (paper Fig. 2) that evaluates a whole field as exactly as window by window.

The paper's net maps one window ``(frames, w, w)`` of axial displacement to one Young's modulus. A full map
needs that number at every pixel; evaluating 250 x 600 windows of 65 x 65 one by one costs hours on a CPU.
This net is built so that one forward pass over a whole field ``(frames, H, W)`` returns the
``(H - w + 1, W - w + 1)`` per-window results, each exactly equal to evaluating its window alone:

* spatially every convolution is 'valid' (no zero padding inside the window), so a layer's output at a
  position depends only on pixels of that window; dense blocks centre-crop the features they concatenate;
* the paper's average pooling between blocks is stride 2 over a window. Over a field the same numbers come
  from the pooling at stride 1 and every later layer dilated by the pooling factor ("a trous"); the window
  mode keeps the strides (cheaper per window, used for training), the dense mode dilates;
* the time axis is always complete (35 frames), so it is padded and pooled freely (after the stem and at
  every transition);
* the head averages the remaining time axis and applies a 1 x 1 linear layer: per pixel, equivariant.
  With ``sigma_head`` a second per-pixel head (two 1 x 1 layers) gives the log of the relative standard
  deviation of a log-normal distribution around that estimate (``distribution``): equally exact densely.
  It reads the final features detached, so it never trains the layers the estimate comes from: with the
  likelihood's gradient flowing into them, the quick demo's held-out MAE rose from 7.7 to 9.8 kPa.

The spatial kernels are chosen per window size so that the receptive field is exactly the window: the
window maps to one output. Small windows (9, 5) keep spatial stride 1 throughout (paper) and use 1 x 1
spatial kernels in later layers. Batch norm is a per-channel affine map in eval mode, so it keeps the
equivalence; in train mode batch statistics differ between the two modes, so dense evaluation is eval only.

Tensors: input ``(batch, 1, frames, depth, lateral)``; window mode returns ``(batch,)`` kPa, dense mode
``(batch, depth - w + 1, lateral - w + 1)`` kPa.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypedDict, Unpack, cast

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from shearlab.protocols.strict_model import StrictModel

# Frames of one sequence (SPEC §2); every window carries all of them.
N_FRAMES = 35
# Temporal kernel of every convolution; padded by 1 so the time axis keeps its length.
_TIME_KERNEL = 3


class ModelConfig(StrictModel):
    """Every hyperparameter of a :class:`DenseNet3d`; serialised as JSON into checkpoints."""

    stem_kernels_px: tuple[int, ...] = Field(default=(3, 3, 2), min_length=1)
    block_kernels_px: tuple[tuple[int, ...], ...] = ((3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3))
    pool_px: tuple[int, ...] = (2, 2)
    init_channels: int = Field(default=16, gt=0)
    growth_rate: int = Field(default=16, gt=0)
    compression: float = Field(default=0.5, gt=0, le=1)
    stem_time_pool: int = Field(default=2, ge=1)
    output_scale_kpa: float = Field(default=100.0, gt=0)
    # A second head predicting each estimate's uncertainty (``DenseNet3d.distribution``).
    sigma_head: bool = False

    @model_validator(mode="after")
    def _check_geometry(self) -> ModelConfig:
        if len(self.pool_px) != len(self.block_kernels_px) - 1:
            raise ValueError("pool_px needs one entry per transition: len(block_kernels_px) - 1")
        if any(k < 1 for k in self.stem_kernels_px) or any(p < 1 for p in self.pool_px):
            raise ValueError("kernel and pool sizes must be >= 1")
        if any(k < 1 or k % 2 == 0 for block in self.block_kernels_px for k in block):
            raise ValueError("dense-layer spatial kernels must be odd so the concatenation crop is symmetric")
        return self

    @property
    def block_sizes(self) -> tuple[int, ...]:
        return tuple(len(block) for block in self.block_kernels_px)

    @property
    def window_px(self) -> int:
        """Receptive field (= window side) in pixels."""
        reach = sum(k - 1 for k in self.stem_kernels_px)
        dilation = 1
        for i, block in enumerate(self.block_kernels_px):
            reach += sum(k - 1 for k in block) * dilation
            if i < len(self.pool_px):
                reach += (self.pool_px[i] - 1) * dilation
                dilation *= self.pool_px[i]
        return reach + 1


# Spatial kernels per window size. Reach (w - 1) is spread over stem, blocks and pools at growing
# dilation; 65 and 33 share the first stages, 9 and 5 never pool in space (paper: stride 1).
_WINDOW_PLANS: dict[int, dict[str, tuple]] = {
    65: dict(stem_kernels_px=(3, 3, 2), block_kernels_px=((3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)), pool_px=(2, 2)),
    33: dict(stem_kernels_px=(3, 3, 2), block_kernels_px=((3, 3, 3, 3), (3, 3, 3, 3), (1, 1, 1, 1)), pool_px=(2, 2)),
    17: dict(stem_kernels_px=(3, 3, 2), block_kernels_px=((3, 3, 3, 1), (3, 1, 1, 1), (1, 1, 1, 1)), pool_px=(2, 1)),
    9: dict(stem_kernels_px=(3, 3, 3), block_kernels_px=((3, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1)), pool_px=(1, 1)),
    5: dict(stem_kernels_px=(3, 3, 1), block_kernels_px=((1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1)), pool_px=(1, 1)),
}
WINDOW_SIZES_PX: tuple[int, ...] = tuple(_WINDOW_PLANS)


def model_config_for_window(window_px: int, *, init_channels: int = 16, growth_rate: int = 16,
                            compression: float = 0.5, stem_time_pool: int = 2,
                            output_scale_kpa: float = 100.0, sigma_head: bool = False) -> ModelConfig:
    """The paper-shaped configuration for one of the windows 65, 33, 17, 9, 5 px."""
    if window_px not in _WINDOW_PLANS:
        raise ValueError(f"window_px must be one of {WINDOW_SIZES_PX}, got {window_px}")
    return ModelConfig(**_WINDOW_PLANS[window_px], init_channels=init_channels, growth_rate=growth_rate,
                       compression=compression, stem_time_pool=stem_time_pool, output_scale_kpa=output_scale_kpa,
                       sigma_head=sigma_head)


def _crop(x: torch.Tensor, margin: int) -> torch.Tensor:
    if margin == 0:
        return x
    return x[..., margin:-margin, margin:-margin]


def _conv(x: torch.Tensor, conv: nn.Conv3d, dilation: int) -> torch.Tensor:
    # Same weights in both modes; only the spatial dilation changes.
    return F.conv3d(x, conv.weight, conv.bias, padding=(_TIME_KERNEL // 2, 0, 0), dilation=(1, dilation, dilation))


class _StemLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_px: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, (_TIME_KERNEL, kernel_px, kernel_px), bias=False)
        self.norm = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The stem runs before any pooling: dilation 1 in both modes.
        return F.relu(self.norm(_conv(x, self.conv, 1)))


class _DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth_rate: int, kernel_px: int) -> None:
        super().__init__()
        self.kernel_px = kernel_px
        self.norm = nn.BatchNorm3d(in_channels)
        self.conv = nn.Conv3d(in_channels, growth_rate, (_TIME_KERNEL, kernel_px, kernel_px), bias=False)

    def forward(self, x: torch.Tensor, dilation: int) -> torch.Tensor:
        return _conv(F.relu(self.norm(x)), self.conv, dilation)


class _DenseBlock(nn.Module):
    def __init__(self, in_channels: int, growth_rate: int, kernels_px: tuple[int, ...]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            _DenseLayer(in_channels + i * growth_rate, growth_rate, k) for i, k in enumerate(kernels_px)
        )

    def forward(self, x: torch.Tensor, dilation: int) -> torch.Tensor:
        for layer in cast(Iterable[_DenseLayer], self.layers):
            new = layer(x, dilation)
            x = torch.cat([_crop(x, (layer.kernel_px - 1) // 2 * dilation), new], dim=1)
        return x


class _Transition(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, pool_px: int) -> None:
        super().__init__()
        self.pool_px = pool_px
        self.norm = nn.BatchNorm3d(in_channels)
        self.conv = nn.Conv3d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor, dilation: int, dense: bool) -> torch.Tensor:
        x = self.conv(F.relu(self.norm(x)))
        x = F.avg_pool3d(x, (2, 1, 1), stride=(2, 1, 1))
        p = self.pool_px
        if p == 1:
            return x
        if not dense:
            return F.avg_pool3d(x, (1, p, p), stride=(1, p, p))
        # A trous: the stride-p pool evaluated at every position, its taps `dilation` apart.
        h_out = x.shape[-2] - (p - 1) * dilation
        w_out = x.shape[-1] - (p - 1) * dilation
        taps = [x[..., i * dilation:i * dilation + h_out, j * dilation:j * dilation + w_out]
                for i in range(p) for j in range(p)]
        return torch.stack(taps).mean(dim=0)


# Relative uncertainty the sigma head starts from (10 %): a gel's estimate is rarely better at first.
_INITIAL_RELATIVE_SIGMA = 0.1


class _SigmaHead(nn.Module):
    """Per-pixel log of the relative sigma from the final features ``(n, c, h, w)``: two 1 x 1 layers.

    Its last layer starts at zero, so every pixel starts at ``_INITIAL_RELATIVE_SIGMA`` and the head
    learns from there instead of from a random spread of uncertainties.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(channels, channels)
        self.out = nn.Linear(channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, math.log(_INITIAL_RELATIVE_SIGMA))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        per_pixel = features.permute(0, 2, 3, 1)
        return self.out(F.relu(self.hidden(per_pixel)))[..., 0]


class DenseNet3d(nn.Module):
    """3D DenseNet mapping a ``(frames, w, w)`` displacement window to Young's modulus in kPa.

    Parameters
    ----------
    stem_kernels_px
        Spatial kernel of each initial convolution (paper: three).
    block_kernels_px
        Spatial kernel of each dense layer, one tuple per block (paper: three blocks of four).
    pool_px
        Spatial average-pooling factor of each transition (1: pool time only).
    init_channels, growth_rate, compression
        Widths: stem channels, channels added per dense layer, channel factor at transitions.
    stem_time_pool
        Average-pool time by this factor after the stem (35 -> 17 frames at 2). The first dense block runs at
        full spatial resolution, so this halves most of a window's cost; 3.5 kHz still resolves the
        shear waves' few hundred Hz.
    output_scale_kpa
        The linear head's output is multiplied by this, so unit-scale weights give kPa-scale outputs.
    sigma_head
        Add a head for the estimate's uncertainty: ``distribution(x)`` returns the estimate and the log
        of its relative standard deviation (the log-space sigma of a log-normal whose median is the
        estimate). ``forward`` is the same with or without it.

    Notes
    -----
    ``forward(x)`` takes ``(batch, 1, frames, w, w)`` and returns ``(batch,)`` kPa;
    ``forward(x, dense=True)`` takes ``(batch, 1, frames, H, W)`` and returns
    ``(batch, H - w + 1, W - w + 1)`` kPa, element ``[i, j]`` being the window whose top-left pixel is
    ``(i, j)`` (centre ``(i + w // 2, j + w // 2)``). Time is pooled by ``stem_time_pool`` after the
    stem and by 2 at each transition (35 -> 17 -> 8 -> 4 frames by default).
    """

    # A buffer (moves with the model, not a parameter, not in checkpoints).
    output_scale_kpa: torch.Tensor

    def __init__(self, *, stem_kernels_px: tuple[int, ...] = (3, 3, 2),
                 block_kernels_px: tuple[tuple[int, ...], ...] = ((3, 3, 3, 3),) * 3,
                 pool_px: tuple[int, ...] = (2, 2), init_channels: int = 16, growth_rate: int = 16,
                 compression: float = 0.5, stem_time_pool: int = 2, output_scale_kpa: float = 100.0,
                 sigma_head: bool = False) -> None:
        super().__init__()
        self.config = ModelConfig(stem_kernels_px=stem_kernels_px, block_kernels_px=block_kernels_px,
                                  pool_px=pool_px, init_channels=init_channels, growth_rate=growth_rate,
                                  compression=compression, stem_time_pool=stem_time_pool,
                                  output_scale_kpa=output_scale_kpa, sigma_head=sigma_head)
        self.stem = nn.ModuleList(
            _StemLayer(1 if i == 0 else init_channels, init_channels, k) for i, k in enumerate(stem_kernels_px)
        )
        channels = init_channels
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for i, kernels in enumerate(block_kernels_px):
            self.blocks.append(_DenseBlock(channels, growth_rate, kernels))
            channels += len(kernels) * growth_rate
            if i < len(pool_px):
                out_channels = max(1, int(channels * compression))
                self.transitions.append(_Transition(channels, out_channels, pool_px[i]))
                channels = out_channels
        self.norm_final = nn.BatchNorm3d(channels)
        self.classifier = nn.Linear(channels, 1)
        self.register_buffer("output_scale_kpa", torch.tensor(float(output_scale_kpa)), persistent=False)
        self._init_weights()
        # Built after the others so that adding it leaves every other initial weight as it was.
        self.sigma_head = _SigmaHead(channels) if sigma_head else None

    @classmethod
    def from_config(cls, config: ModelConfig) -> DenseNet3d:
        return cls(**{name: getattr(config, name) for name in ModelConfig.model_fields})

    @property
    def window_px(self) -> int:
        return self.config.window_px

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def _features(self, x: torch.Tensor, dense: bool) -> torch.Tensor:
        """Final per-pixel features ``(n, c, h, w)``, time averaged: what both heads read."""
        if x.ndim != 5 or x.shape[1] != 1:
            raise ValueError(f"expected (batch, 1, frames, depth, lateral), got {tuple(x.shape)}")
        w = self.window_px
        if not dense and (x.shape[-2] != w or x.shape[-1] != w):
            raise ValueError(f"window mode needs {w} x {w} windows, got {tuple(x.shape[-2:])}; use dense=True for fields")
        if dense and (x.shape[-2] < w or x.shape[-1] < w):
            raise ValueError(f"field {tuple(x.shape[-2:])} is smaller than the {w} x {w} window")
        for layer in self.stem:
            x = layer(x)
        t = self.config.stem_time_pool
        if t > 1:
            x = F.avg_pool3d(x, (t, 1, 1), stride=(t, 1, 1))
        dilation = 1
        for i, block in enumerate(self.blocks):
            x = block(x, dilation if dense else 1)
            if i < len(self.transitions):
                transition = cast(_Transition, self.transitions[i])
                x = transition(x, dilation, dense)
                if dense:
                    dilation *= transition.pool_px
        return F.relu(self.norm_final(x)).mean(dim=2)

    def _modulus_kpa(self, features: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("nchw,oc->nohw", features, self.classifier.weight) + self.classifier.bias[None, :, None, None]
        return out[:, 0] * self.output_scale_kpa

    def forward(self, x: torch.Tensor, *, dense: bool = False) -> torch.Tensor:
        out = self._modulus_kpa(self._features(x, dense))
        return out if dense else out[:, 0, 0]

    def distribution(self, x: torch.Tensor, *, dense: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The estimate (kPa, as ``forward``) and the log of its relative sigma, from one pass.

        The predicted distribution of the modulus is log-normal: ``log E ~ N(log estimate, sigma^2)``,
        so the estimate is its median and ``sigma`` (dimensionless) is roughly the relative standard
        deviation. Both outputs have ``forward``'s shape. Needs ``sigma_head``.
        """
        if self.sigma_head is None:
            raise ValueError("this net has no sigma head: build it with sigma_head=True to predict uncertainty")
        features = self._features(x, dense)
        modulus, log_sigma = self._modulus_kpa(features), self.sigma_head(features.detach())
        return (modulus, log_sigma) if dense else (modulus[:, 0, 0], log_sigma[:, 0, 0])


class Widths(TypedDict, total=False):
    """Width and head settings of the named builders (see ``ModelConfig``)."""

    init_channels: int
    growth_rate: int
    compression: float
    output_scale_kpa: float
    sigma_head: bool


def densenet3d_w65(**widths: Unpack[Widths]) -> DenseNet3d:
    """65 x 65 x 35 windows; ``widths``: init_channels, growth_rate, compression, output_scale_kpa, sigma_head."""
    return DenseNet3d.from_config(model_config_for_window(65, **widths))


def densenet3d_w33(**widths: Unpack[Widths]) -> DenseNet3d:
    """33 x 33 x 35 windows."""
    return DenseNet3d.from_config(model_config_for_window(33, **widths))


def densenet3d_w17(**widths: Unpack[Widths]) -> DenseNet3d:
    """17 x 17 x 35 windows."""
    return DenseNet3d.from_config(model_config_for_window(17, **widths))


def densenet3d_w9(**widths: Unpack[Widths]) -> DenseNet3d:
    """9 x 9 x 35 windows (spatial stride 1 throughout)."""
    return DenseNet3d.from_config(model_config_for_window(9, **widths))


def densenet3d_w5(**widths: Unpack[Widths]) -> DenseNet3d:
    """5 x 5 x 35 windows (spatial stride 1 throughout)."""
    return DenseNet3d.from_config(model_config_for_window(5, **widths))
