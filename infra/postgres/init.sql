-- Two databases on one server: the hub's own and Airflow's metadata. Passwords are the compose defaults;
-- override them (WATERHUB_DB_PASSWORD, AIRFLOW_DB_PASSWORD) and ALTER ROLE accordingly in production.
CREATE ROLE waterhub LOGIN PASSWORD 'waterhub';
CREATE DATABASE waterhub OWNER waterhub;
CREATE ROLE airflow LOGIN PASSWORD 'airflow';
CREATE DATABASE airflow OWNER airflow;
