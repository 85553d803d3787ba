-- One server, one database and one login role per service, each role owning only its own database.
-- The postgres image runs this file (psql, as the superuser) on the volume's first start only.
-- Passwords come from the container's environment through psql's \getenv (psql 15+), never from this file;
-- the services get the same variables from docker/.env. No other role may connect to a service's database:
-- REVOKE ... FROM PUBLIC leaves CONNECT to the owner (and the superuser, for backups).
-- tests/security/test_postgres_roles.py runs this same file with a name prefix (psql -v prefix=...).
\set ON_ERROR_STOP on
\if :{?prefix}
\else
  \set prefix ''
\endif
\set dagster_password ''
\set labels_password ''
\set labelstudio_password ''
\set mlflow_password ''
\getenv dagster_password DAGSTER_PG_PASSWORD
\getenv labels_password LABEL_STORE_PG_PASSWORD
\getenv labelstudio_password LABEL_STUDIO_PG_PASSWORD
\getenv mlflow_password MLFLOW_PG_PASSWORD

-- An empty password would create a role without one: refuse before creating anything.
SELECT (:'dagster_password' = '' OR :'labels_password' = '' OR :'labelstudio_password' = ''
        OR :'mlflow_password' = '') AS missing_password \gset
\if :missing_password
  \warn 'postgres-init.sql: set DAGSTER_PG_PASSWORD, LABEL_STORE_PG_PASSWORD, LABEL_STUDIO_PG_PASSWORD and MLFLOW_PG_PASSWORD (docker/.env)'
  DO $$ BEGIN RAISE EXCEPTION 'a service password is missing: nothing was created'; END $$;
\endif

-- Dagster storage (runs, events, schedules): the webserver, the daemon, the user code and every run.
\set name :prefix dagster
CREATE ROLE :"name" LOGIN PASSWORD :'dagster_password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;

-- The label store (items, annotations, consensus, splits): the user code and every run.
\set name :prefix labels
CREATE ROLE :"name" LOGIN PASSWORD :'labels_password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;

-- Label Studio's own database: the labelstudio service only.
\set name :prefix labelstudio
CREATE ROLE :"name" LOGIN PASSWORD :'labelstudio_password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;

-- MLflow's tracking store and model registry: the mlflow service only (runs go through its HTTP API).
\set name :prefix mlflow
CREATE ROLE :"name" LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
