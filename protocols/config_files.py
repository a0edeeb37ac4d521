"""Reading TOML config and protocol files into pydantic models, with errors a person can act on."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

import tomli_w
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigFileError(ValueError):
    """A config or protocol file is missing, not TOML, or does not validate.

    The message names the file, then one line per problem: the dotted field path and what is wrong.
    """

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = problems
        super().__init__(f"{self.path}: " + "; ".join(problems))


def describe_validation_error(exc: ValidationError) -> list[str]:
    """``field.path: message`` for each error of a pydantic validation failure."""
    errors = exc.errors()
    problems = []
    for err in errors:
        # A list whose item failed is also reported as too short "after validation": the item's error says it.
        if err["type"] == "too_short" and any(other["loc"][:len(err["loc"])] == err["loc"] and other is not err for other in errors):
            continue
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        problems.append(f"{where}: {err['msg']}")
    return problems


def load_toml_model(path: Path | str, model: type[M]) -> M:
    """Parse the TOML file at ``path`` and validate it as ``model``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(path, ["file not found"]) from None
    except OSError as exc:
        raise ConfigFileError(path, [f"cannot be read ({exc.strerror})"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError(path, [f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): "
                                     "TOML files are UTF-8"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(path, [f"not valid TOML ({exc})"]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(path, describe_validation_error(exc)) from None


def write_toml_model(path: Path | str, model: BaseModel) -> Path:
    """Write ``model`` as the TOML file ``load_toml_model`` reads back into an equal model.

    Fields left at their defaults are left out, so the file says only what differs from them; ``None``
    (which TOML cannot hold) is left out too, which reads back as the default ``None``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(model.model_dump(mode="json", exclude_defaults=True, exclude_none=True)), encoding="utf-8")
    return path
