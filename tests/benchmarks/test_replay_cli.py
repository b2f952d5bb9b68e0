"""The replay benchmark's command line refuses bad arguments and bad tables with one line
that names them, before any replay runs."""

from __future__ import annotations

import pytest

from benchmarks.replay.__main__ import main
from tests.replay.conftest import make_table


@pytest.mark.parametrize(
    ("argument", "value", "expected"),
    [
        ("--seeds", "0", "at least 1, got '0'"),
        ("--seeds", "-1", "at least 1, got '-1'"),
        ("--workers", "1,x", "at least 1, got 'x'"),
        ("--workers", ",", "worker counts such as 1,8"),
        ("--budget", "0", "in (0, 1], got '0'"),
        ("--budget", "2", "in (0, 1], got '2'"),
        ("--processes", "0", "at least 1, got '0'"),
    ],
)
def test_a_bad_argument_is_refused_by_name(argument, value, expected, capsys):
    with pytest.raises(SystemExit) as raised:
        main([argument, value])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {argument}: expected" in error and expected in error


def test_a_corrupt_table_is_one_error_line_naming_its_file(tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "curves.parquet").write_text("not parquet")
    code = main(["--tables", str(tmp_path), "--history", str(tmp_path), "--out", str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert error.startswith("error: ") and "broken/curves.parquet" in error
    assert "\n" not in error and not (tmp_path / "replay.json").exists()


def test_a_table_without_evidence_is_refused_for_strategies_that_run_stage_one(tmp_path, capsys):
    make_table(tmp_path / "tables" / "bare", name="bare", evidence=False)
    tables = str(tmp_path / "tables")
    arguments = ["--tables", tables, "--history", tables, "--seeds", "1", "--workers", "1"]
    arguments += ["--processes", "1", "--out", str(tmp_path)]
    assert main([*arguments, "--strategies", "tpe_rush"]) == 2
    assert "bare: the table holds no stage-1 evidence (evidence.parquet" in capsys.readouterr().err
    assert main([*arguments, "--strategies", "tpe"]) == 0  # a plain baseline needs none
