import numpy as np
import pytest
import torch

from shearlab.training.inference import predict_dense
from shearlab.training.model import WINDOW_SIZES_PX, DenseNet3d, ModelConfig, model_config_for_window


def _tiny(window_px: int, seed: int = 0) -> DenseNet3d:
    torch.manual_seed(seed)
    model = DenseNet3d.from_config(model_config_for_window(window_px, init_channels=3, growth_rate=3))
    # Non-trivial batch-norm statistics, so eval mode is a real per-channel affine map.
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.normal_(0, 0.3, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
    return model.eval()


def _windows_of(field: torch.Tensor, w: int) -> torch.Tensor:
    """All w x w windows of ``(1, 1, frames, H, W)`` as ``(n, 1, frames, w, w)``, row-major by top-left."""
    patches = field.unfold(3, w, 1).unfold(4, w, 1)
    return patches.permute(0, 3, 4, 1, 2, 5, 6).reshape(-1, 1, field.shape[2], w, w)


@pytest.mark.parametrize("window_px", WINDOW_SIZES_PX)
def test_builders_have_the_window_as_receptive_field(window_px):
    assert model_config_for_window(window_px).window_px == window_px


# (window, extra rows, extra columns): fewer windows at 65, where each costs ~0.3 s on one core.
@pytest.mark.parametrize(("window_px", "extra_rows", "extra_cols"),
                         [(5, 5, 8), (9, 5, 8), (17, 5, 8), (33, 3, 4), (65, 2, 3)])
def test_dense_field_equals_window_by_window(window_px, extra_rows, extra_cols):
    model = _tiny(window_px)
    rng = np.random.default_rng(window_px)
    shape = (1, 1, 35, window_px + extra_rows, window_px + extra_cols)
    field = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    with torch.no_grad():
        dense = model(field, dense=True)[0]
        windowed = model(_windows_of(field, window_px)).reshape(dense.shape)
    assert dense.shape == (extra_rows + 1, extra_cols + 1)
    # Same arithmetic up to float32 summation order.
    assert torch.max(torch.abs(dense - windowed)).item() <= 1e-3
    assert torch.std(dense).item() > 1e-2, "a constant map would make the comparison vacuous"


def test_dense_map_places_each_estimate_at_its_window_centre():
    model = _tiny(9)
    rng = np.random.default_rng(3)
    volume = rng.standard_normal((35, 20, 24)).astype(np.float32) * 4 + 1
    estimates = predict_dense(model, volume)
    normalised = (volume - volume.mean()) / volume.std()
    row, col = 7, 15
    window = torch.from_numpy(normalised[None, None, :, row - 4:row + 5, col - 4:col + 5].copy())
    with torch.no_grad():
        expected = model(window).item()
    assert estimates[row, col] == pytest.approx(expected, abs=1e-3)
    assert np.isnan(estimates[:4]).all() and np.isnan(estimates[-4:]).all()
    assert np.isnan(estimates[:, :4]).all() and np.isnan(estimates[:, -4:]).all()
    assert np.isfinite(estimates[4:-4, 4:-4]).all()


def test_window_mode_rejects_a_window_of_the_wrong_size():
    model = _tiny(9)
    with pytest.raises(ValueError, match="9 x 9"):
        model(torch.zeros(1, 1, 35, 11, 11))


def test_config_rejects_inconsistent_geometry():
    with pytest.raises(ValueError, match="pool_px"):
        ModelConfig(pool_px=(2,))
    with pytest.raises(ValueError, match="odd"):
        ModelConfig(block_kernels_px=((2, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)))


def test_widths_are_constructor_arguments_and_module_names_are_stable():
    model = DenseNet3d.from_config(model_config_for_window(17, init_channels=5, growth_rate=2))
    names = set(model.state_dict())
    assert {"stem.0.conv.weight", "blocks.0.layers.3.conv.weight", "transitions.1.conv.weight",
            "norm_final.running_mean", "classifier.weight"} <= names
    assert model.stem[0].conv.out_channels == 5
    assert model.blocks[0].layers[0].conv.out_channels == 2
