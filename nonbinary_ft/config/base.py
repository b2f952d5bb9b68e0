"""What every configuration model shares: frozen pydantic models and one error conversion.

Every section of a sweep file (and every search-space file) is a :class:`FrozenModel`:
immutable, unknown keys rejected. Validators that check several fields together raise
:func:`invalid`, which names the offending field; :func:`config_error_from_validation` is the
one place where pydantic's errors become the project's one-line :class:`ConfigError`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from nonbinary_ft.errors import ConfigError

__all__ = [
    "FrozenModel",
    "PositiveFloat",
    "NonNegativeFloat",
    "AbsolutePath",
    "invalid",
    "config_error_from_validation",
    "validate_model",
    "read_yaml",
]

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
# A path read relative to the working directory where the file is loaded, stored absolute:
# Ray runs each trial in a folder of its own, where a relative path would point elsewhere.
AbsolutePath = Annotated[Path, AfterValidator(lambda path: path.expanduser().absolute())]

# The error type of :func:`invalid`; its context carries the field and what was expected.
_INVALID = "nbft_invalid"
# How pydantic names the members of a union in an error's location.
_UNION_TAG = re.compile(r"^(int|float|str|bool|none|[a-z_-]+\[.*\])$")


class FrozenModel(BaseModel):
    """An immutable configuration section that rejects unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


def invalid(field: str, expected: str, got: Any = None) -> PydanticCustomError:
    """The error a cross-field validator raises: ``field`` must be ``expected``.

    Args:
        field: the offending field, relative to the model that validates (dotted).
        expected: what a valid value looks like ("set when low_layers > 0").
        got: the value given, when worth showing.
    """
    return PydanticCustomError(
        _INVALID, "'{field}' must be {expected}", {"field": field, "expected": expected, "got": got}
    )


def _expected_and_got(error: Any) -> tuple[str, str, Any]:
    """(extra field path, what was expected, what was given) of one pydantic error."""
    kind = error["type"]
    got = error.get("input")
    if kind == _INVALID:
        context = error["ctx"]
        return context["field"], context["expected"], context.get("got")
    if kind == "extra_forbidden":
        return "", "absent: it is not a known setting", None
    if kind == "union_tag_invalid":
        expected = f"a distribution whose type is one of {error['ctx']['expected_tags']}"
        return "", expected, error["ctx"]["tag"]
    if kind == "missing":
        return "", "given: it is required", None
    if kind == "value_error":
        return "", str(error["msg"]).removeprefix("Value error, "), None
    # "a valid integer, unable to parse string as an integer": the first clause says it.
    expected = str(error["msg"]).removeprefix("Input should be ").split(", unable")[0].rstrip(".")
    return "", expected, None if isinstance(got, dict) else got


def _field_path(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """A location as the user wrote it: pydantic's union-member tags ('int', "literal['all']")
    are not part of the file."""
    return tuple(str(part) for part in loc if not _UNION_TAG.match(str(part)))


def config_error_from_validation(
    error: ValidationError, source: str | Path | None = None, prefix: str = ""
) -> ConfigError:
    """Turn pydantic's error into the project's one-line :class:`ConfigError`.

    The first problem is reported with its field path; the count of the others is appended.
    A value that fits none of a union's forms lists them all ("a valid integer or 'all'").

    Args:
        error: what pydantic raised.
        source: the file the values came from.
        prefix: the field path of the validated mapping inside ``source``.
    """
    errors = error.errors()
    path = _field_path(errors[0]["loc"])
    # A union reports one error per form it accepts, all at the same field.
    same_field = [item for item in errors if _field_path(item["loc"]) == path]
    extra, expected, got = _expected_and_got(errors[0])
    if len(same_field) > 1:
        forms = [_expected_and_got(item)[1] for item in same_field]
        expected = " or ".join(dict.fromkeys(forms))
        got = errors[0].get("input") if not isinstance(errors[0].get("input"), dict) else None
    field = ".".join(part for part in (prefix, *path, extra) if part != "")
    others = len(errors) - len(same_field)
    fix = (
        f"({others} more problem{'s' if others > 1 else ''} in the same file.)" if others else None
    )
    return ConfigError(field or "<top level>", expected, got, fix, source)


def validate_model(
    model: type[BaseModel], raw: Any, source: str | Path | None = None, prefix: str = ""
) -> Any:
    """``model.model_validate(raw)``, with pydantic's error turned into a :class:`ConfigError`.

    Raises:
        ConfigError: naming ``source``, the field path under ``prefix`` and what was expected.
    """
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise config_error_from_validation(error, source, prefix) from None


def read_yaml(path: str | Path, what: str) -> Any:
    """The YAML document in ``path``.

    Raises:
        ConfigError: the file is missing or is not YAML (naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(what, "an existing YAML file", str(path), source=path)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError("<file>", "valid YAML", None, str(err).replace("\n", " "), path) from err
