"""The sweep file's and the space file's formats as JSON Schema, and as a reference page.

:func:`json_schema` is what ``nbft schema`` prints (editors validate and complete YAML with
it); :func:`reference_markdown` turns it into ``docs/reference.md``, one table per section
(field, type, default, description), so that the formats are documented from the pydantic
models themselves and a test notices when the page is stale.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from nonbinary_ft.config.experiment import ExperimentConfig
from nonbinary_ft.config.space import SearchSpace

__all__ = ["SCHEMAS", "json_schema", "reference_markdown"]

SCHEMAS = {"sweep": ExperimentConfig, "space": SearchSpace}


def json_schema(kind: Literal["sweep", "space"]) -> dict[str, Any]:
    """The JSON Schema of a sweep file or a search-space file."""
    return SCHEMAS[kind].model_json_schema()


def _type(node: dict[str, Any]) -> str:
    """A short name of a property's type."""
    if "$ref" in node:
        return node["$ref"].rsplit("/", 1)[-1]
    if "enum" in node:
        return " \\| ".join(json.dumps(value) for value in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return " \\| ".join(_type(option) for option in node[key])
    if node.get("type") == "array":
        items = node.get("items") or node.get("prefixItems") or {}
        inner = _type(items) if isinstance(items, dict) else "…"
        return f"list of {inner}"
    if node.get("type") == "object" and "additionalProperties" in node:
        return "mapping"
    return str(node.get("type", "any"))


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(title: str, model: dict[str, Any]) -> list[str]:
    lines = [f"### {title}", "", _cell(model.get("description", "")), ""]
    lines += ["| field | type | default | description |", "|---|---|---|---|"]
    required = set(model.get("required", []))
    for name, node in model.get("properties", {}).items():
        if name in required:
            default = "required"
        else:
            default = json.dumps(node["default"]) if "default" in node else "its defaults"
        description = _cell(node.get("description", ""))
        lines.append(f"| `{name}` | {_type(node)} | {_cell(default)} | {description} |")
    return [*lines, ""]


def reference_markdown() -> str:
    """The reference page: each file's top level, then every section it refers to."""
    lines = [
        "# Sweep file and space file reference",
        "",
        "Generated from the pydantic models by `nbft schema --markdown` (a test fails when",
        "this page is stale). `nbft schema sweep` and `nbft schema space` print the JSON",
        "Schema, which editors use to validate and complete the YAML.",
        "",
    ]
    for kind in SCHEMAS:
        schema = json_schema(kind)  # type: ignore[arg-type]
        lines += [f"## The {kind} file", ""]
        lines += _table(schema.get("title", kind), schema)
        for name, model in sorted(schema.get("$defs", {}).items()):
            if "properties" in model:
                lines += _table(name, model)
    return "\n".join(lines).rstrip() + "\n"
