"""The PI hexapod that drives the indentation plate."""

from shearlab.devices.hexapod.pi_gcs import AXES, GCSError, PIHexapod, gcs_error_meaning

__all__ = ["AXES", "GCSError", "PIHexapod", "gcs_error_meaning"]
