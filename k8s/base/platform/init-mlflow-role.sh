#!/bin/sh
# Run once by the postgres image on an empty data directory (sourced by its entrypoint, as
# the superuser, over the local socket). MLflow gets a role of its own that owns its two
# databases, the tracking store ("mlflow") and the auth app's store ("mlflow_auth"), and
# nothing else: it is not a superuser and cannot create roles or databases. The role's name
# and password are the nbft-mlflow-db Secret, mounted as files.
set -eu
role="$(cat /etc/mlflow-db-credentials/username)"
password="$(cat /etc/mlflow-db-credentials/password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v role="$role" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
ALTER DATABASE mlflow OWNER TO :"role";
CREATE DATABASE mlflow_auth OWNER :"role";
SQL
