"""The preflight: bad inputs that used to fail inside every trial fail first, in seconds."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch
import yaml
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from nonbinary_ft.errors import ConfigError, DataError, ModelError
from nonbinary_ft.tuning.plan import StorageLocation
from nonbinary_ft.tuning.preflight import preflight
from tests.servers import free_port


def _local(tmp_path):
    return StorageLocation(str(tmp_path / "runs"), tmp_path / "runs")


def _check(make_config, tmp_path, **changes):
    config = make_config(tmp_path)
    for section, values in changes.items():
        part = getattr(config, section).model_copy(update=values)
        config = config.model_copy(update={section: part})
    storage = StorageLocation(str(tmp_path / "runs" / "x"), tmp_path / "runs" / "x")
    preflight(config, f"sqlite:///{tmp_path / 'db'}", storage, "sweep.yaml")


def test_a_good_sweep_passes_and_leaves_no_folder(make_config, tmp_path):
    _check(make_config, tmp_path)
    assert not (tmp_path / "runs").exists()


def test_a_cuda_device_on_a_machine_without_one_is_refused(make_config, tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ConfigError, match=r"sweep.yaml: 'train.device'"):
        _check(make_config, tmp_path, train={"device": "cuda"})


def test_storage_under_a_regular_file_is_refused(make_config, tmp_path):
    (tmp_path / "runs").write_text("a file")
    with pytest.raises(ConfigError, match=r"'sweep.storage.path'.*is a file"):
        _check(make_config, tmp_path)


def test_a_missing_data_root_and_a_crafted_checkpoint_are_refused(make_config, tmp_path):
    from nonbinary_ft.config import DataConfig, ModelConfig

    config = make_config(tmp_path)
    folder = DataConfig.model_validate({"kind": "imagefolder", "root": str(tmp_path / "none")})
    bad = config.model_copy(update={"data": folder})
    with pytest.raises(DataError, match="none"):
        preflight(bad, "sqlite:///x.db", _local(tmp_path))

    class Payload:
        def __reduce__(self):
            return (print, ("payload ran",))

    checkpoint = tmp_path / "weights.pt"
    torch.save({"state_dict": Payload()}, checkpoint)
    model = ModelConfig.model_validate(
        {"name": config.model.name, "pretrained": "checkpoint", "checkpoint": str(checkpoint)}
    )
    with pytest.raises(ModelError, match="weights.pt"):
        preflight(config.model_copy(update={"model": model}), "sqlite:///x.db", _local(tmp_path))


class _Refusing(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_mlflow_server_that_refuses_or_is_not_there_fails_in_seconds(make_config, tmp_path):
    config = make_config(tmp_path)
    with pytest.raises(ConfigError, match="no answer within"):
        preflight(config, f"http://127.0.0.1:{free_port()}", _local(tmp_path))
    server = HTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(ConfigError, match="credentials"):
            preflight(config, uri, _local(tmp_path))
    finally:
        server.shutdown()


def _sweep_without_its_data(make_document, tmp_path, name: str):
    """A sweep file whose image-folder root does not exist."""
    space = {"name": "lr", "parameters": {"lr_high": {"type": "float", "low": 0.001, "high": 0.1}}}
    document = make_document(tmp_path, name, space=space)
    document["data"] = {"kind": "imagefolder", "root": str(tmp_path / "missing")}
    source = tmp_path / f"{name}.yaml"
    source.write_text(yaml.safe_dump(document))
    return source


def test_the_dry_run_warns_of_data_missing_here_and_a_sweep_refuses_it(make_document, tmp_path):
    source = _sweep_without_its_data(make_document, tmp_path, "dry")
    planned = CliRunner().invoke(app, ["sweep", str(source), "--dry-run", "--json"])
    assert planned.exit_code == 0, planned.output
    (warning,) = json.loads(planned.stdout)["warnings"]
    assert "missing" in warning and "where the sweep runs" in warning
    assert planned.stderr.startswith("warning:")
    refused = CliRunner().invoke(app, ["sweep", str(source)])
    assert refused.exit_code == 2 and "missing" in refused.stderr


def test_an_s3_endpoint_that_does_not_answer_fails_in_seconds(make_config, tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    storage = StorageLocation(
        "s3://bucket/sweeps/x", tmp_path / "runs", f"http://127.0.0.1:{free_port()}"
    )
    started = time.monotonic()
    with pytest.raises(ConfigError, match="'sweep.storage.path' must be an S3 location"):
        preflight(make_config(tmp_path), "sqlite:///x.db", storage)
    assert time.monotonic() - started < 60


def test_bad_input_prints_one_line_and_no_log_lines_before_it(make_document, tmp_path):
    source = _sweep_without_its_data(make_document, tmp_path, "oneline")
    for args in (["sweep", str(source)], ["sweep", str(source), "--set", "train.epochs=0"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), lines


def test_a_ray_address_that_does_not_answer_fails_in_seconds(make_config, tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    storage = StorageLocation(str(tmp_path / "runs"), tmp_path / "runs")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="'RAY_ADDRESS' must be a Ray cluster that answers"):
        preflight(make_config(tmp_path), "sqlite:///x.db", storage)
    assert time.monotonic() - started < 30
