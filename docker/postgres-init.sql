-- One server, one database per system (created on the volume's first start only).
CREATE DATABASE dagster;
CREATE DATABASE labels;
CREATE DATABASE labelstudio;
CREATE DATABASE mlflow;
