"""What every configuration model shares: frozen pydantic models and one error conversion.

Every section of a sweep file (and every search-space file) is a :class:`FrozenModel`:
immutable, unknown keys rejected. Validators that check several fields together raise
:func:`invalid`, which names the offending field; :func:`config_error_from_validation` is the
one place where pydantic's errors become the project's one-line :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from nonbinary_ft.errors import ConfigError

__all__ = [
    "FrozenModel",
    "PositiveFloat",
    "NonNegativeFloat",
    "AbsolutePath",
    "DataRoot",
    "invalid",
    "config_error_from_validation",
    "validate_model",
    "read_yaml",
]

# Finite: a learning rate or strength of .inf passes gt=0 and fails hours later.
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# A path read relative to the working directory where the file is loaded, stored absolute:
# Ray runs each trial in a folder of its own, where a relative path would point elsewhere.
AbsolutePath = Annotated[Path, AfterValidator(lambda path: path.expanduser().absolute())]


def _data_root(value: str | Path) -> str | Path:
    if isinstance(value, str) and value.startswith("s3://"):
        if not value.removeprefix("s3://").split("/", 1)[0]:
            raise ValueError("an s3:// URI names a bucket: s3://bucket/prefix")
        return value.rstrip("/")
    return Path(value).expanduser().absolute()


DataRoot = Annotated[str | Path, BeforeValidator(_data_root)]
"""A local folder (made absolute) or an object-storage URI (``s3://bucket/prefix``, kept)."""

# The error type of :func:`invalid`; its context carries the field and what was expected.
_INVALID = "nbft_invalid"
# How pydantic names the members of a union in an error's location: by type, or by the
# tag of a discriminated union (a search space's distribution 'type's; no setting of any
# section has one of these names).
_UNION_TAG = re.compile(r"^(int|float|str|bool|none|choice|grid|fixed|[a-z_-]+\[.*\])$")


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


# What a length or pattern constraint expects, in the words of the rest of the messages.
_CONSTRAINTS = {
    "string_too_short": "a text of at least {min_length} character(s)",
    "string_too_long": "a text of at most {max_length} character(s)",
    "string_pattern_mismatch": "a text matching {pattern}",
    "too_short": "at least {min_length} item(s)",
    "too_long": "at most {max_length} item(s)",
}


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
    if kind in _CONSTRAINTS:  # not pydantic's "String should have at least 1 character"
        return "", _CONSTRAINTS[kind].format(**error["ctx"]), got
    # "a valid integer, unable to parse string as an integer": the first clause says it.
    expected = str(error["msg"]).removeprefix("Input should be ").split(", unable")[0].rstrip(".")
    return "", expected, None if isinstance(got, dict) else got


def _field_path(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """A location as the user wrote it: pydantic's union-member tags ('int', "literal['all']")
    are not part of the file."""
    return tuple(str(part) for part in loc if not _UNION_TAG.match(str(part)))


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (through Optional, unions and tuples), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _submodel(argument)
        if found is not None:
            return found
    return None


def _close_match(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str | None:
    """For an unknown key at ``loc``: the known key of the same section closest to it."""
    for part in loc[:-1]:
        if model is None:
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # a union tag or a list index: stay in the same model
        model = _submodel(field.annotation)
    if model is None:
        return None
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None


def config_error_from_validation(
    error: ValidationError,
    source: str | Path | None = None,
    prefix: str = "",
    model: type[BaseModel] | None = None,
) -> ConfigError:
    """Turn pydantic's error into the project's one-line :class:`ConfigError`.

    The first problem is reported with its field path; the others' fields are appended.
    A value that fits none of a union's forms lists them all ("a valid integer or 'all'").

    Args:
        error: what pydantic raised.
        source: the file the values came from.
        prefix: the field path of the validated mapping inside ``source``.
        model: the model validated (an unknown key then gets the closest known one).
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
    # The other problems by field, each once (a union's forms repeat a field).
    others = list(
        dict.fromkeys(
            ".".join(part for part in (prefix, *_field_path(item["loc"])) if part != "")
            or "<top level>"
            for item in errors
            if _field_path(item["loc"]) != path
        )
    )
    hints = []
    if errors[0]["type"] == "extra_forbidden":
        close = _close_match(model, tuple(errors[0]["loc"]))
        if close is not None:
            parent = ".".join(part for part in (prefix, *path[:-1]) if part != "")
            hints.append(f"Did you mean '{parent + '.' if parent else ''}{close}'?")
    if others:
        also = ", ".join(f"'{other}'" for other in others)
        hints.append(f"(Also wrong in the same file: {also}.)")
    return ConfigError(field or "<top level>", expected, got, " ".join(hints) or None, source)


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
        raise config_error_from_validation(error, source, prefix, model) from None


def read_yaml(path: str | Path, what: str) -> Any:
    """The YAML document in ``path``.

    Raises:
        ConfigError: the file is missing or is not YAML (naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(what, "an existing YAML file", str(path), source=path)
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        raise ConfigError("<file>", "valid YAML", None, _yaml_problem(err), path) from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's complaint in one line, with where it is."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem[0].upper()}{problem[1:]}{where}."


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last
    without a word: a second ``settings:`` block would silently replace the first). Merge
    keys (``<<: *defaults``) still work: a key written in the mapping overrides a merged one,
    as YAML says, and only the mapping's own keys must be distinct."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
