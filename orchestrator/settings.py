"""Environment overrides of the defaults the command line and the Python API start from.

Each field is read from ``SHEARLAB_<FIELD>`` (``SHEARLAB_OUT``, ``SHEARLAB_RIG``,
``SHEARLAB_INDENTATION_RIG``, ``SHEARLAB_LIVE_URL``); a lab sets them once per machine, e.g. the rig file of the robot wired
to that PC. An option given on the command line wins over the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from shearlab.protocols.shipped import shipped_file


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHEARLAB_", frozen=True)

    # Folder under which commands write by default (``demo`` -> OUT/demo, ``twin realism`` -> OUT/realism).
    out: Path = Path("out")
    # Acquisition rig (UR3, Nano43, scanner) for ``rig check``, ``serve`` and ``run_campaign``.
    rig: Path = shipped_file("rigs", "twin.toml")
    # Indentation rig (hexapod, Nano17) for ``serve`` and ``run_calibration``.
    indentation_rig: Path = shipped_file("rigs", "twin_indentation.toml")
    # Where ``shearlab live`` serves a campaign's session folder: the campaign's live-map artifacts in the
    # Prefect UI show their map images from there.
    live_url: str = "http://127.0.0.1:8765"


def settings() -> Settings:
    """The settings as the environment says now."""
    return Settings()
