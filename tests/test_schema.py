"""The sweep and space formats as JSON Schema: every shipped file validates against it, the
schema refuses what the models refuse, and the reference page is generated from it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from nonbinary_ft.config.schema import json_schema, reference_markdown

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _cli_schema(kind: str) -> dict:
    result = runner.invoke(app, ["schema", kind])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("path", sorted((REPO / "sweeps").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_sweep_file_validates_against_the_printed_schema(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), _cli_schema("sweep"))


@pytest.mark.parametrize(
    "path", sorted((REPO / "search_spaces").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_space_file_validates_against_the_printed_schema(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), _cli_schema("space"))


def test_the_schema_refuses_what_the_models_refuse():
    document = yaml.safe_load((REPO / "sweeps" / "quickstart.yaml").read_text())
    document["train"]["epochs"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json_schema("sweep"))
    document["train"] = {"epoch": 3}
    with pytest.raises(jsonschema.ValidationError, match="epoch"):
        jsonschema.validate(document, json_schema("sweep"))


def test_the_reference_page_is_up_to_date():
    page = (REPO / "docs" / "reference.md").read_text()
    assert page == reference_markdown(), "docs/reference.md is stale: nbft schema --markdown"
    assert "| `warm_start` |" in page and "| `reinit_layers` |" in page
