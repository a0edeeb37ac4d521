"""The strict pydantic base every config, plan and record model derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Frozen, an unknown field is an error (a misspelt key in a file must not pass silently), and every
    number is finite: ``inf`` passes every ``gt=0`` limit, and NaN compares false with every limit."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
