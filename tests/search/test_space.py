"""Search-space files: every shipped space validates; bad ones name the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest

from nonbinary_ft.config.space import (
    FloatRange,
    Grid,
    SearchSpace,
    dump_space,
    load_space,
    parse_space,
)
from nonbinary_ft.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "path", sorted((ROOT / "search_spaces").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_space_validates(path):
    space = load_space(path)
    assert isinstance(space, SearchSpace) and space.parameters


def test_paper_space_covers_the_non_binary_settings():
    space = load_space(ROOT / "search_spaces" / "paper_full.yaml")
    assert {
        "reinit_layers",
        "lr_high",
        "low_layers",
        "lr_low",
        "l2sp_layers",
        "alpha",
        "beta",
    } <= set(space.parameters)
    assert isinstance(space.parameters["lr_high"], FloatRange)
    assert space.parameters["lr_high"].log


def test_dump_then_parse_round_trips(tmp_path):
    space = parse_space(
        {
            "name": "s",
            "parameters": {
                "lr_high": {"type": "grid", "values": [0.01, 0.1]},
                "reinit_layers": {"type": "int", "low": 1, "high": 3},
                "l2sp_layers": {"type": "choice", "values": [0, "all"]},
                "alpha": {"type": "fixed", "value": 0.01},
            },
        }
    )
    path = tmp_path / "s.yaml"
    path.write_text(dump_space(space))
    assert load_space(path) == space
    assert space.grid_size() == 2
    assert isinstance(space.parameters["lr_high"], Grid)


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ({"learning_rate": {"type": "float", "low": 0.1, "high": 1}}, "parameters.learning_rate"),
        ({"lr_high": {"type": "float", "low": 1, "high": 0.1}}, "<= high"),
        ({"lr_high": {"type": "float", "low": 0, "high": 0.1, "log": True}}, "log scale"),
        ({"lr_high": {"type": "normal", "low": 0, "high": 1}}, "'float', 'int'"),
        # Where the file has it: no union tag ('grid') inside the path.
        (
            {"lr_high": {"type": "grid", "values": []}},
            "'parameters.lr_high.values' must be at least 1",
        ),
    ],
)
def test_bad_spaces_name_file_and_parameter(tmp_path, parameters, fragment):
    with pytest.raises(ConfigError) as info:
        parse_space({"name": "bad", "parameters": parameters}, tmp_path / "bad.yaml")
    assert fragment in str(info.value) and "bad.yaml" in str(info.value)
