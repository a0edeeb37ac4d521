"""Spatio-temporal DenseNet, training, dense full-field inference, metrics, figures, report.

The classical estimators the CNN is compared with live in ``shearlab.protocols.signal``."""

from shearlab.training.augment import AugmentConfig
from shearlab.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from shearlab.training.config import TrainConfig
from shearlab.training.experiments import (
    FoldResult,
    cross_validation_fold,
    fine_tune,
    leave_one_concentration_out_fold,
    train_fold,
)
from shearlab.training.inference import predict_dense, predict_sparse, predict_windows
from shearlab.training.metrics import (
    dice,
    dice_curve,
    error_summary,
    failure_fraction,
    mae_by_group,
    mae_kpa,
    pearson,
    positions_per_s,
)
from shearlab.training.model import (
    WINDOW_SIZES_PX,
    DenseNet3d,
    ModelConfig,
    densenet3d_w5,
    densenet3d_w9,
    densenet3d_w17,
    densenet3d_w33,
    densenet3d_w65,
    model_config_for_window,
)
from shearlab.training.normalisation import Normalisation, normalise_volume, zscore_windows
from shearlab.training.report import write_report
from shearlab.training.trainer import TrainResult, predict_dataset, train
from shearlab.training.truth_windows import TruthMapWindowDataset
from shearlab.training.windows import VolumeWindowDataset, WindowDataset, WindowPlacement

__all__ = [
    "WINDOW_SIZES_PX",
    "AugmentConfig",
    "Checkpoint",
    "DenseNet3d",
    "FoldResult",
    "ModelConfig",
    "Normalisation",
    "TrainConfig",
    "TrainResult",
    "TruthMapWindowDataset",
    "VolumeWindowDataset",
    "WindowDataset",
    "WindowPlacement",
    "cross_validation_fold",
    "densenet3d_w5",
    "densenet3d_w9",
    "densenet3d_w17",
    "densenet3d_w33",
    "densenet3d_w65",
    "dice",
    "dice_curve",
    "error_summary",
    "failure_fraction",
    "fine_tune",
    "leave_one_concentration_out_fold",
    "load_checkpoint",
    "mae_by_group",
    "mae_kpa",
    "model_config_for_window",
    "normalise_volume",
    "pearson",
    "positions_per_s",
    "predict_dataset",
    "predict_dense",
    "predict_sparse",
    "predict_windows",
    "save_checkpoint",
    "train",
    "train_fold",
    "write_report",
    "zscore_windows",
]
