#!/usr/bin/env bash
# Two databases on one server: the hub's own and Airflow's metadata. The postgres image runs this once, on an
# empty data volume, with the passwords compose hands it (WATERHUB_DB_PASSWORD, AIRFLOW_DB_PASSWORD), so the
# roles always match the connection strings the other services are given.
set -euo pipefail
: "${WATERHUB_DB_PASSWORD:?set WATERHUB_DB_PASSWORD}" "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v hub_password="$WATERHUB_DB_PASSWORD" -v airflow_password="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE waterhub LOGIN PASSWORD :'hub_password';
CREATE DATABASE waterhub OWNER waterhub;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
SQL
