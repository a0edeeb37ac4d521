"""Checkpoints that load with ``torch.load(weights_only=True)``.

Everything that is not a tensor is a plain JSON string, an int, a float or a list: the model and training
configs, the split and the dataset fingerprint. A checkpoint also carries the optimizer, the learning-rate
schedule position, the epoch and the torch RNG state, so training resumes where it stopped. A net with a
sigma head also carries the calibration of its sigma once it has one (``save_sigma_calibration``).
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from shearlab.datasets.errors import DataFileError
from shearlab.training.config import TrainConfig
from shearlab.training.model import DenseNet3d, ModelConfig
from shearlab.training.uncertainty import SigmaCalibration

# 2: the training config no longer carries in-loop augmentation (datasets augment their windows).
CHECKPOINT_FORMAT = "shearlab.training.checkpoint/2"


@dataclass
class Checkpoint:
    """A loaded checkpoint; ``epochs_done`` counts completed epochs."""

    model_state: dict[str, torch.Tensor]
    model_config: ModelConfig
    train_config: TrainConfig
    epochs_done: int
    optimizer_state: dict[str, Any] | None = None
    rng_state: torch.Tensor | None = None
    split: Any = None
    dataset_fingerprint: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    # Where it was read from, for errors that name the file.
    path: Path | None = None
    # How the sigma head's raw sigma maps to intervals; None for a net without one or not yet calibrated.
    sigma_calibration: SigmaCalibration | None = None

    def build_model(self, device: str | torch.device = "cpu") -> DenseNet3d:
        """The model with its weights, in eval mode; ``CheckpointError`` if the weights do not fit its configuration."""
        model = DenseNet3d.from_config(self.model_config)
        try:
            model.load_state_dict(self.model_state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise CheckpointError(self.path or Path("checkpoint"),
                                  f"its weights do not fit its model configuration ({first})") from None
        return model.to(device).eval()


def save_checkpoint(path: Path, *, model: DenseNet3d, train_config: TrainConfig, epochs_done: int,
                    optimizer: torch.optim.Optimizer | None = None, split: Any = None,
                    dataset_fingerprint: str = "", history: list[dict[str, float]] | None = None) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves a half checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config": model.config.model_dump_json(),
        "train_config": train_config.model_dump_json(),
        "epochs_done": int(epochs_done),
        "scheduler": {"epochs_done": int(epochs_done), "lr": float(train_config.lr_at(epochs_done))},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "rng_state": torch.get_rng_state(),
        "split": json.dumps(split),
        "dataset_fingerprint": str(dataset_fingerprint),
        "history": json.dumps(history or []),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


class CheckpointError(DataFileError):
    """A checkpoint file is missing, unreadable, or not one :func:`save_checkpoint` wrote."""


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no pickled code).

    Raises ``CheckpointError`` naming the file for anything but a whole checkpoint of this format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint not found" if not path.exists() else "not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "empty file, not a checkpoint")
    try:
        with warnings.catch_warnings():
            # A foreign pickle's protocol draws a warning before the refusal that says it all.
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(path, "not a readable checkpoint: torch's safe loader refused it (random bytes, or a pickle "
                                    "that would load code or objects other than tensors; nothing was run)") from None
    except Exception as exc:  # noqa: BLE001 - torch.load raises whatever its unpickler trips on (KeyError, RuntimeError, ...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(path, f"not a readable checkpoint: truncated, damaged or not written by shearlab "
                                    f"({type(exc).__name__}: {reason[:160]})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(path, f"not a {CHECKPOINT_FORMAT} checkpoint (format={found!r})")
    try:
        return Checkpoint(
            model_state=payload["model"],
            model_config=ModelConfig.model_validate_json(payload["model_config"]),
            train_config=TrainConfig.model_validate_json(payload["train_config"]),
            epochs_done=int(payload["epochs_done"]),
            optimizer_state=payload["optimizer"],
            rng_state=payload["rng_state"],
            split=json.loads(payload["split"]),
            dataset_fingerprint=payload["dataset_fingerprint"],
            history=json.loads(payload["history"]),
            sigma_calibration=SigmaCalibration.model_validate_json(payload["sigma_calibration"])
            if payload.get("sigma_calibration") else None,
            path=path,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(path, f"damaged checkpoint ({type(exc).__name__}: {str(exc)[:160]})") from None


def save_sigma_calibration(path: Path, calibration: SigmaCalibration) -> Path:
    """Store ``calibration`` in the checkpoint at ``path`` (atomically, everything else unchanged)."""
    load_checkpoint(path)  # a typed error for anything but one of our checkpoints
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    payload["sigma_calibration"] = calibration.model_dump_json()
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return Path(path)
