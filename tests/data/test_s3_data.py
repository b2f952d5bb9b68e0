"""A data set in object storage: ``data.root: s3://bucket/prefix`` is copied to the machine's
disk once and read as an image folder, against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import io
import time

import boto3
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from nonbinary_ft.config import DataConfig
from nonbinary_ft.data import read_samples
from nonbinary_ft.errors import DataError
from tests.servers import S3_CREDENTIALS, free_port, moto_s3
from tests.tiny import tiny_document

pytestmark = pytest.mark.slow

BUCKET = "nbft-data"
CLASSES = ("red", "green", "blue")


def _png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    with moto_s3(tmp_path_factory.mktemp("moto")) as url:
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **keys)
        client.create_bucket(Bucket=BUCKET)
        for colour in CLASSES:
            for index in range(8):
                key = f"sets/colours/train/{colour}/{index}.png"
                client.put_object(Bucket=BUCKET, Key=key, Body=_png(colour))
        yield url


@pytest.fixture
def on_s3(endpoint, tmp_path, monkeypatch):
    for name, value in {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NBFT_DATA_CACHE", str(tmp_path / "data-cache"))
    return tmp_path / "data-cache"


def test_an_s3_image_folder_is_copied_once_and_read_like_a_local_one(on_s3):
    data = DataConfig(kind="imagefolder", root=f"s3://{BUCKET}/sets/colours/")
    samples = read_samples(data)
    assert samples.classes == tuple(sorted(CLASSES))
    assert len(samples.train) + len(samples.val) + len(samples.test) == 24
    (copy,) = [folder for folder in on_s3.iterdir()]
    assert all(str(path).startswith(str(copy)) for path, _ in samples.train)
    stamps = {path: path.stat().st_mtime_ns for path in copy.rglob("*.png")}
    time.sleep(0.01)
    read_samples(data)  # a second read fetches nothing
    assert {path: path.stat().st_mtime_ns for path in copy.rglob("*.png")} == stamps


def test_finetune_trains_on_data_in_s3(on_s3, tmp_path):
    document = tiny_document(data={"kind": "imagefolder", "root": f"s3://{BUCKET}/sets/colours"})
    sweep = tmp_path / "s3.yaml"
    sweep.write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(app, ["finetune", str(sweep), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.stdout


def test_a_missing_prefix_or_a_dead_endpoint_names_data_root_in_seconds(on_s3, monkeypatch):
    with pytest.raises(DataError, match=f"data.root s3://{BUCKET}/nothing: no objects"):
        read_samples(DataConfig(kind="imagefolder", root=f"s3://{BUCKET}/nothing"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(DataError, match="data.root s3://.*cannot list it"):
        read_samples(DataConfig(kind="imagefolder", root=f"s3://{BUCKET}/sets/colours"))
    assert time.monotonic() - started < 60
