"""Compatibility with DAG files written for Apache Airflow (see `asyncflow.compat.airflow`)."""
