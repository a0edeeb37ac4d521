import numpy as np
import pytest

from shearlab.training.inference import predict_dense, predict_sparse


def test_tiled_dense_map_equals_the_whole_field_pass(model, volume):
    whole = predict_dense(model, volume, tile_px=None)
    tiled = predict_dense(model, volume, tile_px=9)
    assert whole.shape == (30, 40)
    np.testing.assert_allclose(tiled, whole, atol=1e-3, equal_nan=True)
    assert np.isfinite(whole).sum() == (30 - 16) * (40 - 16)


def test_sparse_every_pixel_equals_dense_and_sparse_covers_the_same_pixels(model, volume):
    dense = predict_dense(model, volume)
    np.testing.assert_allclose(predict_sparse(model, volume, step_px=1), dense, atol=1e-3, equal_nan=True)
    coarse = predict_sparse(model, volume, step_px=4)
    np.testing.assert_array_equal(np.isnan(coarse), np.isnan(dense))
    # Evaluated pixels are exact; in between is linear interpolation.
    assert coarse[8, 8] == pytest.approx(dense[8, 8], abs=1e-3)
    assert coarse[8, 10] == pytest.approx(0.5 * (dense[8, 8] + dense[8, 12]), abs=1e-3)


def test_stored_sequence_statistics_are_used(model, volume):
    own = predict_dense(model, volume)
    stored = predict_dense(model, volume, mean_um=float(volume.mean()), std_um=float(volume.std()))
    np.testing.assert_allclose(stored, own, atol=1e-3, equal_nan=True)


def test_per_window_normalisation_is_refused_densely_but_available_sparsely(model, volume):
    with pytest.raises(ValueError, match="sequence"):
        predict_dense(model, volume, normalisation="window")
    sparse = predict_sparse(model, volume, step_px=8, normalisation="window")
    assert np.isfinite(sparse[8:-8, 8:-8]).all()
