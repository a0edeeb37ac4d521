"""Window augmentation: seeded, shape-keeping, and only grid-preserving turns unless asked."""

import numpy as np

from shearlab.training.augment import AugmentConfig, augment_blur, augment_erase, augment_geometry


def _augment(window: np.ndarray, seed: int, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return augment_erase(augment_blur(augment_geometry(window, rng, cfg), rng, cfg), rng, cfg)


def test_augmentation_is_seeded_and_keeps_the_window_shape():
    window = np.random.default_rng(0).standard_normal((35, 9, 9)).astype(np.float32)
    a, b = _augment(window, 1), _augment(window, 1)
    assert a.shape == window.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(_augment(window, seed), window) for seed in range(5))


def test_flips_and_rotation_keep_pixel_geometry():
    window = np.random.default_rng(0).standard_normal((3, 5, 5)).astype(np.float32)
    cfg = AugmentConfig(flip_depth_p=1.0, flip_lateral_p=0.0, rotate180_p=1.0, blur_p=0.0, erase_p=0.0)
    out = augment_geometry(window, np.random.default_rng(1), cfg)
    # a depth flip then a half turn is a lateral flip: still on the same anisotropic grid
    np.testing.assert_array_equal(out, window[:, :, ::-1])
    assert not AugmentConfig().rotate90  # 90-degree rotations swap 0.08 and 0.055 mm pixels: opt-in


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
    cfg = AugmentConfig.none()
    cfg = AugmentConfig(**{**cfg.__dict__, "erase_p": 1.0})
    out = augment_erase(window, np.random.default_rng(3), cfg, value=0.0)
    erased = out == 0.0
    assert erased.any() and np.array_equal(erased[0], erased[-1])
    fraction = erased[0].mean()
    assert cfg.erase_area[0] * 0.5 <= fraction <= cfg.erase_area[1] * 1.5
