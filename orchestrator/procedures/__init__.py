"""Device procedures: what flows ask devices to do, written against the device interfaces only."""
