import torch

from shearlab.training.augment import augment_batch


def test_augmentation_is_seeded_and_keeps_the_window_shape():
    windows = torch.randn(8, 1, 35, 9, 9, generator=torch.Generator().manual_seed(0))
    a = augment_batch(windows, torch.Generator().manual_seed(1))
    b = augment_batch(windows, torch.Generator().manual_seed(1))
    assert a.shape == windows.shape
    assert torch.equal(a, b)


def test_without_rotate90_only_grid_preserving_transforms_apply():
    # A window whose lateral and depth profiles differ: a 90 degree turn would swap them.
    ramp = torch.arange(9.0)
    window = (ramp[None, :] * 10 + ramp[:, None]).expand(1, 1, 35, 9, 9).clone()
    out = augment_batch(window.repeat(64, 1, 1, 1, 1), torch.Generator().manual_seed(2))
    untouched = out[:, 0, 0]
    # Flips and 180 degree turns keep steps of 10 along the last axis (blur keeps a ramp's interior steps,
    # erasing zeroes at most 4 x 4 px); a 90 degree turn would leave steps of 1 there.
    lateral_steps = (untouched[..., 1:] - untouched[..., :-1]).abs().flatten(1)
    assert torch.all((lateral_steps - 10).abs().amin(dim=1) < 1e-3)
