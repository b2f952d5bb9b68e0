"""Whether an MLflow tracking server answers, asked through MLflow's own client.

MLflow's REST client retries a dead server for minutes by default. :func:`check_server` asks
once, with a timeout, and with exactly the authentication MLflow itself would send: basic
auth (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``), a bearer token
(``MLFLOW_TRACKING_TOKEN``), an auth plugin (``MLFLOW_TRACKING_AUTH``), SigV4 and the TLS
settings (``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH``,
``MLFLOW_TRACKING_CLIENT_CERT_PATH``). The sweep's preflight and every command that reads a
tracking store call it before anything that would hang. :func:`mlflow_database` says
where a local SQLite store lives.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONNECT_TIMEOUT_S", "check_server", "mlflow_database"]

CONNECT_TIMEOUT_S = 10.0
"""How long a server may take to answer before the caller gives up (never an endless retry)."""


def check_server(tracking_uri: str, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why an ``http(s)`` tracking server cannot be used, or None when it answers.

    A file or database store (``sqlite:///``, a path) is local and always None here.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    from mlflow.exceptions import MlflowException
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(
            get_default_host_creds(tracking_uri),
            "/api/2.0/mlflow/experiments/search",
            "GET",
            max_retries=0,
            timeout=timeout_s,
            raise_on_status=False,
            params={"max_results": 1},
        )
    except MlflowException as error:
        cause = str(error).split(" failed with exception ", 1)[-1].splitlines()[0][:300]
        return f"no answer within {timeout_s:g} s ({cause})"
    if response.status_code in (401, 403):
        return (
            f"HTTP {response.status_code}: the credentials were refused (MLflow sends "
            "MLFLOW_TRACKING_TOKEN as a bearer token, else MLFLOW_TRACKING_USERNAME/PASSWORD)"
        )
    if response.status_code != 200:
        return f"HTTP {response.status_code} from {tracking_uri}"
    return None


def mlflow_database(tracking_uri: str) -> Path | None:
    """The SQLite file of a ``sqlite:///`` tracking URI; None for any other store."""
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix) :]) if tracking_uri.startswith(prefix) else None
