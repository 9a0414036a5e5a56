"""The HTTP API (Airflow REST API v2 names), Server-Sent Events, Prometheus metrics and the
dashboard, as one ASGI app: `create_app(engine, token=...)`."""

from asyncflow.web.app import create_app

__all__ = ["create_app"]
