import numpy as np
import pytest
import torch

from shearlab.protocols.signal.modulus import speed_to_modulus_kpa
from shearlab.training.checkpoint import load_checkpoint
from shearlab.training.config import TrainConfig
from shearlab.training.experiments import cross_validation_fold, fine_tune
from shearlab.training.inference import predict_windows
from shearlab.training.model import DenseNet3d, model_config_for_window
from shearlab.training.synthetic import shear_wave_volume, small_grid
from shearlab.training.trainer import train
from shearlab.training.windows import VolumeWindowDataset

SPEEDS_M_S = (2.4, 4.0, 6.5)


def _data(seed: int, n_per_speed: int = 4, window_px: int = 9, augment: bool = True) -> VolumeWindowDataset:
    rng = np.random.default_rng(seed)
    grid = small_grid(24, 40, n_frames=35)
    volumes, labels = [], []
    for speed in SPEEDS_M_S:
        for _ in range(n_per_speed):
            push = grid.lateral_m[0] - rng.uniform(1e-3, 3e-3)
            volumes.append(shear_wave_volume(grid, speed_m_s=speed, push_lateral_m=push, rng=rng, noise_um=0.2))
            labels.append(float(speed_to_modulus_kpa(np.array(speed))))
    return VolumeWindowDataset(volumes, labels, window_px, seed=seed, augment=augment)


def _model(seed: int = 0) -> DenseNet3d:
    torch.manual_seed(seed)
    return DenseNet3d.from_config(model_config_for_window(9, init_channels=4, growth_rate=4))


def _config(**overrides) -> TrainConfig:
    settings = dict(epochs=4, batch_size=6, lr=3e-3, device="cpu", checkpoint_every_epochs=1)
    return TrainConfig(**(settings | overrides))


def test_paper_learning_rate_schedule():
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.lr) == (250, 250, 1e-4)
    assert [config.lr_at(e) for e in (0, 149, 150, 199, 200, 249)] == [1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5, 2.5e-5]


def test_a_shorter_run_anneals_on_the_same_fractions_of_its_epochs():
    """The quick demo's 60 epochs: constant for 36, then halved every 12, so its last weights settle."""
    config = TrainConfig(epochs=60, lr=1e-3)
    assert [config.lr_at(e) for e in (0, 35, 36, 47, 48, 59)] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]
    # An explicit schedule still wins (fine-tuning at a constant rate, say).
    assert TrainConfig(epochs=20, lr=1e-3, lr_decay_start_epoch=20).lr_at(19) == 1e-3


@pytest.mark.timeout(120)
def test_small_model_overfits_a_small_dataset():
    data = _data(seed=1, augment=False)
    result = train(_model(), data, data, _config(epochs=50, batch_size=12))
    losses = [row["train_mse_kpa2"] for row in result.history]
    # Labels span 17-127 kPa: an untrained net is off by ~80 kPa; learning the speed-label map gets far below.
    assert np.mean(losses[-5:]) < 0.1 * losses[0]
    # Eval mode lags (batch-norm running statistics move 10 % per batch) but must improve too.
    assert result.history[-1]["val_mae_kpa"] < 0.5 * result.history[0]["val_mae_kpa"]


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    data = _data(seed=2, n_per_speed=2)
    result = train(_model(), data, None, _config(epochs=2), checkpoint_path=tmp_path / "run.pt",
                   split={"train": ["a/1", "b/2"]}, dataset_fingerprint="abc123")
    windows = torch.stack([data[i][0] for i in range(len(data))])
    before = predict_windows(result.model, windows)
    payload = torch.load(tmp_path / "run.pt", weights_only=True)
    assert isinstance(payload["model_config"], str) and isinstance(payload["split"], str)
    state = load_checkpoint(tmp_path / "run.pt")
    assert state.epochs_done == 2 and state.dataset_fingerprint == "abc123"
    assert state.split == {"train": ["a/1", "b/2"]}
    after = predict_windows(state.build_model(), windows)
    np.testing.assert_array_equal(before, after)


def test_resumed_training_continues_identically(tmp_path):
    straight = train(_model(), _data(seed=3, n_per_speed=2), None, _config(epochs=4))

    def crash_in_epoch_3(row: dict[str, float]) -> None:
        if row["epoch"] == 3.0:
            raise KeyboardInterrupt

    # Killed during its third epoch: the checkpoint holds two (checkpoint_every_epochs=1).
    with pytest.raises(KeyboardInterrupt):
        train(_model(), _data(seed=3, n_per_speed=2), None, _config(epochs=4), checkpoint_path=tmp_path / "r.pt",
              on_epoch=crash_in_epoch_3)
    assert load_checkpoint(tmp_path / "r.pt").epochs_done == 2
    # A different initialisation proves the weights come from the checkpoint, not the seed.
    resumed = train(_model(seed=99), _data(seed=3, n_per_speed=2), None, _config(epochs=4),
                    checkpoint_path=tmp_path / "r.pt")
    assert [row["epoch"] for row in resumed.history] == [1.0, 2.0, 3.0, 4.0]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_cv_fold_then_fine_tune_write_their_checkpoints(tmp_path):
    data = _data(seed=4, n_per_speed=1)
    fold = cross_validation_fold(data, data, fold=0, model_config=_model().config,
                                 train_config=_config(epochs=1), checkpoint_path=tmp_path / "cv0.pt",
                                 split={"name": "cv-0"})
    assert np.isfinite(fold.val_mae_kpa)
    tuned = fine_tune(fold.checkpoint_path, data, data, checkpoint_path=tmp_path / "ft.pt")
    state = load_checkpoint(tuned.checkpoint_path)
    assert state.epochs_done == 10
    assert state.split["protocol"] == "fine_tune"
    with pytest.raises(ValueError, match="overwrite"):
        fine_tune(fold.checkpoint_path, data, data, checkpoint_path=tmp_path / "cv0.pt")


def test_a_fold_with_the_same_seed_gives_the_same_net_whatever_ran_before(tmp_path):
    data = _data(seed=4, n_per_speed=1)
    model_config = _model().config

    def net(name: str) -> dict[str, torch.Tensor]:
        fold = cross_validation_fold(data, None, fold=0, model_config=model_config, train_config=_config(epochs=1),
                                     checkpoint_path=tmp_path / name)
        return load_checkpoint(fold.checkpoint_path).model_state

    first = net("a.pt")
    torch.rand(1000)  # another run drew on torch's global generator meanwhile
    second = net("b.pt")
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)
