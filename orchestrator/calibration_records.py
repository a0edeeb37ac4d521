"""Calibration records on disk: the latest indentation fit of each gelatin batch, as JSON.

Acquisitions take their labels from here (by batch id), so every label names the calibration run
that produced it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from shearlab.datasets.records import CalibrationFit
from shearlab.protocols.config_files import ConfigFileError


class MissingCalibrationError(ConfigFileError):
    """No calibration record for a batch, or not a valid one: run the calibration flow first."""


def record_path(calibration_dir: Path, batch_id: str) -> Path:
    return Path(calibration_dir) / f"{batch_id}.json"


def save_record(calibration_dir: Path, fit: CalibrationFit) -> Path:
    path = record_path(calibration_dir, fit.batch_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(fit.model_dump_json(indent=2))
    tmp.replace(path)
    return path


def load_record(calibration_dir: Path, batch_id: str) -> CalibrationFit:
    path = record_path(calibration_dir, batch_id)
    try:
        return CalibrationFit.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise MissingCalibrationError(
            path, [f"no calibration record for batch {batch_id!r}: run `shearlab calibrate` for it first"]) from None
    except OSError as exc:
        raise MissingCalibrationError(path, [f"cannot be read ({exc.strerror})"]) from None
    except ValidationError as exc:
        raise MissingCalibrationError(path, [f"not a valid calibration record ({exc.errors()[0]['msg']})"]) from None
