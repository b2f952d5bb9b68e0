"""Real services the tests start on 127.0.0.1: a free port, and waiting until one answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["free_port", "wait_healthy", "serving", "moto_s3", "S3_CREDENTIALS"]

START_TIMEOUT_S = 120


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port nothing listens on now, and never handed out before in this process.

    The OS may give a just-released port again: two components asked for one port each
    (Ray's dashboard and its metrics exporter) could otherwise get the same one.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    """Wait until ``url`` answers 200; fail with the log's tail if the process dies first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not healthy after {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


@contextmanager
def serving(
    command: list[str], health_url: str, workdir: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Run ``command`` (its own process group, output in ``workdir/server.log``) until the
    block ends, once ``health_url`` answers."""
    log = workdir / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_healthy(health_url, process, log)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_s3(workdir: Path) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (accepts :data:`S3_CREDENTIALS`); yields its endpoint."""
    import sys

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = str(Path(sys.executable).with_name("moto_server"))
    command = [moto, "-H", "127.0.0.1", "-p", str(port)]
    with serving(command, f"{endpoint}/moto-api/", workdir, {**os.environ, **S3_CREDENTIALS}):
        yield endpoint
