"""How long MLflow's own UI takes to show a sweep's runs, timed in headless Chromium.

    python -m benchmarks.mlflow_ui --db runs/<sweep>/mlflow.db --parent <sweep name> [--json]

Starts a real ``mlflow server`` on the sweep's database and opens its experiment's runs page
in headless Chromium, driven over the DevTools protocol so that the time is wall-clock time
(``--virtual-time-budget`` runs a page on virtual time). It measures:

- ``runs_table_s``: from navigation until the runs table shows the sweep's parent run;
- ``children_s``: from a click on the parent's unfold button until its child runs are
  listed (MLflow folds them under the parent);
- ``children_listed``: how many child-run rows the table then holds (MLflow renders only
  the rows in view, so this is a lower bound of what it loaded).

``sweep_scale`` runs it on each size's sweep; :func:`time_runs_page` times a page served
already.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 120.0
# MLflow 3's runs table is an AG Grid: a ``.ag-row`` per run in view, in each column container;
# the rows of the container holding the run names are counted. A parent's child runs are
# folded under it, behind a button in its name cell.
ROWS = (
    "[...document.querySelectorAll('.ag-row')]"
    ".filter(row => row.querySelector('[col-id=\"attributes.`Run Name`\"]'))"
)
COUNT_ROWS = f"{ROWS}.length"
EXPAND_PARENT = f"""(() => {{
  const row = {ROWS}.find(row => row.innerText.includes(%s));
  const button = row && row.querySelector('button[data-component-id*="runnamecellrenderer"]');
  if (button) {{ button.click(); return true; }}
  return false;
}})()"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def mlflow_server(database: Path, workdir: Path) -> Iterator[str]:
    """A real ``mlflow server`` on ``database``; yields its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    store = f"sqlite:///{database.resolve()}"
    command = [mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", store]  # fmt: skip
    with (workdir / "mlflow-server.log").open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start: see {workdir}") from None
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def chromium(workdir: Path) -> Iterator[str]:
    """Headless Chromium with its DevTools port open; yields the port's HTTP address."""
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        raise RuntimeError("Chromium is not installed (make browser installs it)")
    profile = workdir / "chromium-profile"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--no-first-run", "--window-size=1400,900",
               "--remote-debugging-port=0", f"--user-data-dir={profile}",
               "about:blank"]  # fmt: skip
    # A session of its own: its helper processes (renderer, GPU, crash handler) are stopped
    # with it, since they write to the profile folder until they exit.
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT_S
        while not port_file.is_file() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    """Terminate a process and every process of its group, waiting (a few seconds at most)
    until none is left: SIGTERM first, SIGKILL for what outlives it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class _Page:
    """One page target, spoken to over the DevTools protocol."""

    def __init__(self, socket_: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket_
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.socket.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await self.socket.receive_json(timeout=TIMEOUT_S)
            if message.get("id") == self.next_id:
                return message.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str) -> float:
        """Seconds until ``expression`` is truthy (polled every 50 ms)."""
        started = time.monotonic()
        while not await self.evaluate(expression):
            if time.monotonic() - started > TIMEOUT_S:
                raise TimeoutError(f"not shown within {TIMEOUT_S:.0f} s: {expression}")
            await asyncio.sleep(0.05)
        return time.monotonic() - started


async def _time_runs_page(devtools: str, page_url: str, parent: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{devtools}/json/list") as answer:
            target = next(t for t in await answer.json() if t["type"] == "page")
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = _Page(ws)
            await page.call("Page.enable")
            await page.call("Page.navigate", url=page_url)
            shown = f"{ROWS}.some(row => row.innerText.includes({json.dumps(parent)}))"
            runs_table_s = await page.wait_for(shown)
            rows_before = await page.evaluate(COUNT_ROWS)
            started = time.monotonic()
            if not await page.evaluate(EXPAND_PARENT % json.dumps(parent)):
                raise RuntimeError(f"no button to unfold the child runs of {parent!r}")
            await page.wait_for(f"({COUNT_ROWS}) > {rows_before}")
            children_s = time.monotonic() - started
            listed = await page.evaluate(COUNT_ROWS) - rows_before
    return {"runs_table_s": runs_table_s, "children_s": children_s, "children_listed": listed}


def time_runs_page(page_url: str, parent: str) -> dict[str, Any]:
    """Time a runs page already served (the link a sweep prints, say) in a fresh Chromium."""
    with (
        # A file a dying helper process writes late is no failure of the timing.
        tempfile.TemporaryDirectory(prefix="nbft-mlflow-ui-", ignore_cleanup_errors=True) as folder,
        chromium(Path(folder)) as devtools,
    ):
        return asyncio.run(_time_runs_page(devtools, page_url, parent))


def time_mlflow_ui(database: Path, parent: str) -> dict[str, Any]:
    """Serve ``database``, open its sweep's runs page and time it (see the module docstring)."""
    from mlflow.tracking import MlflowClient

    with (
        tempfile.TemporaryDirectory(prefix="nbft-mlflow-server-") as folder,
        mlflow_server(database, Path(folder)) as url,
    ):
        client = MlflowClient(url)
        (run,) = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string=f"attributes.run_name = '{parent}'",
            max_results=1,
        )
        return time_runs_page(f"{url}/#/experiments/{run.info.experiment_id}/runs", parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="the sweep's mlflow.db")
    parser.add_argument("--parent", required=True, help="the sweep's parent run name")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = time_mlflow_ui(args.db, args.parent)
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
