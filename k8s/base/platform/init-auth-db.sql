-- Run once by the postgres image on an empty data directory: the auth app keeps its users
-- and permissions in a database of its own, beside the tracking store ("mlflow").
CREATE DATABASE mlflow_auth;
