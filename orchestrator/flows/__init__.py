"""Prefect flows: calibration, acquisition campaigns, training."""
