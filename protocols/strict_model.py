"""The strict pydantic base every config, plan and record model derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Frozen, and an unknown field is an error: a misspelt key in a file must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)
