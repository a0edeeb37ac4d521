"""Window augmentation: seeded, shape-keeping, only grid-preserving turns unless asked, the same alone or batched."""

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from shearlab.training.augment import AugmentConfig, AugmentDraw, blur, draw_augment, erase, orient, turn_and_blur


def _augment(window: np.ndarray, seed: int, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    draws = [draw_augment(np.random.default_rng(seed), cfg, window.shape[-1])]
    return erase(turn_and_blur(torch.from_numpy(window.copy())[None], draws), draws)[0].numpy()


def test_augmentation_is_seeded_and_keeps_the_window_shape():
    window = np.random.default_rng(0).standard_normal((35, 9, 9)).astype(np.float32)
    a, b = _augment(window, 1), _augment(window, 1)
    assert a.shape == window.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(_augment(window, seed), window) for seed in range(5))


def test_flips_and_rotation_keep_pixel_geometry():
    window = np.random.default_rng(0).standard_normal((3, 5, 5)).astype(np.float32)
    cfg = AugmentConfig(flip_depth_p=1.0, flip_lateral_p=0.0, rotate180_p=1.0, blur_p=0.0, erase_p=0.0)
    # a depth flip then a half turn is a lateral flip: still on the same anisotropic grid
    np.testing.assert_array_equal(_augment(window, 1, cfg), window[:, :, ::-1])
    assert not AugmentConfig().rotate90  # 90-degree rotations swap 0.08 and 0.055 mm pixels: opt-in
    turned = orient(torch.from_numpy(window.copy())[None], [AugmentDraw(rotate90=True)])[0].numpy()
    np.testing.assert_array_equal(turned, np.rot90(window, 1, axes=(1, 2)))


def test_without_rotate90_only_grid_preserving_transforms_apply():
    # A window whose lateral and depth profiles differ: a 90 degree turn would swap them.
    ramp = np.arange(9.0, dtype=np.float32)
    window = np.broadcast_to(ramp[None, :] * 10 + ramp[:, None], (35, 9, 9)).copy()
    geometry_only = AugmentConfig(blur_p=0.0, erase_p=0.0)
    for seed in range(64):
        frame = _augment(window, seed, geometry_only)[0]
        # Flips and 180 degree turns keep steps of 10 along the lateral axis; a 90 degree turn would
        # leave steps of 1 there.
        np.testing.assert_array_equal(np.abs(np.diff(frame, axis=1)), 10.0)


def test_erasing_blanks_a_rectangle_through_all_frames():
    window = np.ones((35, 17, 17), dtype=np.float32)
    cfg = AugmentConfig(**{**AugmentConfig.none().__dict__, "erase_p": 1.0})
    out = _augment(window, 3, cfg)
    erased = out == 0.0
    assert erased.any() and np.array_equal(erased[0], erased[-1])
    fraction = erased[0].mean()
    assert cfg.erase_area[0] * 0.5 <= fraction <= cfg.erase_area[1] * 1.5


def test_blur_is_scipys_gaussian_with_mirrored_edges():
    # Known answer: scipy.ndimage.gaussian_filter (truncate 4, mode 'mirror') on the spatial axes only.
    windows = np.random.default_rng(2).standard_normal((3, 4, 13, 13)).astype(np.float32)
    for window, sigma in zip(windows, [0.3, 0.7, 1.0], strict=True):
        got = blur(torch.from_numpy(window.copy()), sigma).numpy()
        np.testing.assert_allclose(got, gaussian_filter(window, sigma=(0, sigma, sigma), mode="mirror"), atol=2e-6)


def test_a_window_comes_out_the_same_alone_or_in_a_batch():
    rng = np.random.default_rng(4)
    windows = rng.standard_normal((12, 35, 17, 17)).astype(np.float32)
    draws = [draw_augment(np.random.default_rng(seed), AugmentConfig(blur_p=0.6), 17) for seed in range(12)]
    assert any(d.blur_sigma_px for d in draws) and any(not d.blur_sigma_px for d in draws)
    batch = erase(turn_and_blur(torch.from_numpy(windows.copy()), draws), draws)
    for window, draw, batched in zip(windows, draws, batch, strict=True):
        alone = erase(turn_and_blur(torch.from_numpy(window.copy())[None], [draw]), [draw])[0]
        assert torch.equal(alone, batched)
