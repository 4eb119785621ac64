-- The topology's other databases (the image creates POSTGRES_DB, dagster, itself).
CREATE DATABASE mlflow;
CREATE DATABASE governance;
