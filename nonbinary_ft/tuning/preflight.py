"""The checks a sweep passes before anything expensive (Ray, MLflow runs, data loading,
training): what a user or a shared store feeds it must exist, load safely and answer.

:func:`preflight` runs in ``nbft sweep`` (``--dry-run`` included) after the sweep file and
its spaces are validated: the model's checkpoint file loads as a plain state dict; the data
and ``analysis.source_sample`` can be indexed (roots and class folders exist);
``train.device`` exists here (or, on a cluster, the trials ask for a GPU); the cluster at
``RAY_ADDRESS`` accepts a connection (``ray.init`` would retry for minutes); the local storage
folder is writable and an S3 bucket answers; an ``http(s)`` MLflow server answers within
:data:`CONNECT_TIMEOUT_S`, asked by MLflow's own client with its auth; the history's replay
tables read. Each failure is one :class:`~nonbinary_ft.errors.NbftError` (exit 2) naming the field.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.errors import ConfigError, NbftError
from nonbinary_ft.paths import check_writable_folder
from nonbinary_ft.tracking.server import CONNECT_TIMEOUT_S, check_server
from nonbinary_ft.tuning.plan import StorageLocation

__all__ = ["CONNECT_TIMEOUT_S", "check_ray_address", "preflight"]


def check_ray_address(address: str) -> None:
    """A ``host:port`` (or ``ray://host:port``) address accepts a TCP connection in time.

    Raises:
        ConfigError: naming RAY_ADDRESS, what did not answer and why.
    """
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # 'auto', 'local' or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise ConfigError(
            "RAY_ADDRESS",
            "a Ray cluster that answers",
            address,
            f"No answer within {CONNECT_TIMEOUT_S:g} s ({error}). Start the cluster "
            "(ray start --head), fix the address, or unset RAY_ADDRESS to run locally.",
        ) from None


def _check_model(config: ExperimentConfig) -> None:
    if config.model.pretrained == "checkpoint":
        from nonbinary_ft.models.loading import load_state_dict_file

        load_state_dict_file(str(config.model.checkpoint))


def _check_data(config: ExperimentConfig) -> None:
    from nonbinary_ft.data import read_samples, source_sample_error
    from nonbinary_ft.data.remote import check_remote, is_remote

    if is_remote(config.data.root):
        check_remote(str(config.data.root))  # listed, not downloaded: each worker copies it
    else:
        read_samples(config.data)
    sample = config.analysis.source_sample
    if sample is not None and config.analysis.in_sweep:
        try:
            read_samples(sample)
        except NbftError as error:
            raise source_sample_error(sample, error) from None


def _check_device(config: ExperimentConfig) -> None:
    device = config.train.device
    if not device.startswith("cuda"):
        return
    if os.environ.get("RAY_ADDRESS"):
        if config.sweep.resources.gpus <= 0:
            raise ConfigError(
                "sweep.resources.gpus", "> 0 with train.device 'cuda' (trials need a GPU)", 0
            )
        return
    from nonbinary_ft.training.device import resolve_device

    resolve_device(device)


def _check_s3(storage: StorageLocation) -> None:
    """The bucket answers (with the credentials in the environment) within the timeout."""
    path, filesystem = storage.ray_storage()
    bucket = path.split("/", 1)[0]
    try:
        info = filesystem.get_file_info(bucket)
    except OSError as error:
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise ConfigError("sweep.storage.path", "an S3 location this machine can reach",
                          storage.root, first) from None  # fmt: skip
    if info.type.name == "NotFound":
        raise ConfigError("sweep.storage.path", "an S3 location in an existing bucket",
                          storage.root, f"bucket '{bucket}' not found")  # fmt: skip


def _check_mlflow(tracking_uri: str, field: str) -> None:
    why = check_server(tracking_uri)
    if why is not None:
        raise ConfigError(field, "an MLflow server that answers", tracking_uri, why)


def preflight(
    config: ExperimentConfig,
    tracking_uri: str,
    storage: StorageLocation,
    source: str | Path | None = None,
    plan_only: bool = False,
) -> list[str]:
    """Run every check of the module docstring, cheapest first.

    Args:
        config: the validated sweep file.
        tracking_uri: the sweep's MLflow tracking URI.
        storage: where the sweep keeps its results (a local folder, or S3 and a local one).
        source: the sweep file (named in a config error).
        plan_only: a dry run: what must exist where the sweep runs (the device, the
            checkpoint, the data) may be missing here, planning a cluster's sweep on a laptop.

    Returns:
        With ``plan_only``, one warning per such check that failed (none otherwise).

    Raises:
        NbftError: the first failing check (ConfigError, DataError, ModelError, TableError).
    """
    try:
        return _checks(config, tracking_uri, storage, plan_only)
    except ConfigError as error:
        raise error.from_file(source) if source is not None else error from None


def _where_it_runs(config: ExperimentConfig, plan_only: bool) -> list[str]:
    """The device, the checkpoint and the data: errors, or warnings when only planning."""
    warnings = []
    for check in (_check_device, _check_model, _check_data):
        try:
            check(config)
        except NbftError as error:
            if not plan_only:
                raise
            warnings.append(f"{error} (planned anyway: it must exist where the sweep runs)")
    return warnings


def _checks(
    config: ExperimentConfig, tracking_uri: str, storage: StorageLocation, plan_only: bool
) -> list[str]:
    check_writable_folder(storage.local_dir, "sweep.storage.path")
    if storage.is_s3:
        _check_s3(storage)
    if os.environ.get("RAY_ADDRESS"):
        check_ray_address(os.environ["RAY_ADDRESS"])
    warnings = _where_it_runs(config, plan_only)
    if config.sweep.search.history_tables:
        from nonbinary_ft.history.store import read_tables

        read_tables(config.sweep.search.history_tables)
    _check_mlflow(tracking_uri, "sweep.mlflow.tracking_uri")
    if config.sweep.search.history_uri:
        _check_mlflow(config.sweep.search.history_uri, "sweep.search.history_uri")
    return warnings
