"""The production-like stack on one machine without Docker (``make stack``): Airflow 3 with the CeleryExecutor
(PostgreSQL metadata, Redis broker, scheduler, DAG processor, API server, Celery workers), SeaweedFS as the shared
S3 object store, the live water-quality simulator; ``launcher`` starts and stops it, ``airflow_api`` talks to it."""

__all__: list[str] = []
