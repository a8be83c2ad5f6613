"""Lineage for Airflow's OpenLineage provider: each DAG task names the datasets it reads and writes, and the
provider's listener (enabled by ``AIRFLOW__OPENLINEAGE__TRANSPORT``: a file, or HTTP to Marquez or any OpenLineage
backend) emits them in the task's START and COMPLETE events, under ``airflow dags test`` as on a Celery worker.

The names follow the contracts. A published dataset is namespace ``waterhub://<hub id>`` and name its dataset key
(the name of its Airflow Asset); a source stream is namespace the source's base URL and name the stream's path
(``/api/v1/samples``), so a department's lineage tool sees which endpoint fed which dataset.

Our tasks are ``@task`` functions, which no provider extractor describes, so the names are added to the running
task's inlets and outlets, which the listener reads when no extractor gave any; Airflow itself keeps only the
Assets among them for asset events, so these extra entries change nothing else. Added at run time because the
source's URL and the hub's id are settings of the worker, not of the DAG file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.http import Source

__all__ = ["declare_lineage", "published_datasets", "source_endpoints"]

Name = tuple[str, str]  # (namespace, name) of an OpenLineage dataset


def published_datasets(hub_id: str, keys: Iterable[str]) -> list[Name]:
    """The OpenLineage names of datasets this hub publishes."""
    return [(f"waterhub://{hub_id}", key) for key in keys]


def source_endpoints(source: Source) -> list[Name]:
    """The OpenLineage names of the HTTP endpoints a source's streams read."""
    return [(source.base_url.rstrip("/"), stream.path) for stream in source.streams]


def declare_lineage(*, inputs: Iterable[Name] = (), outputs: Iterable[Name] = ()) -> None:
    """Add ``inputs`` and ``outputs`` to the running Airflow task's inlets and outlets, for the OpenLineage listener."""
    from airflow.sdk import get_current_context
    from openlineage.client.event_v2 import Dataset

    task = get_current_context()["ti"].task
    task.inlets.extend(Dataset(namespace=namespace, name=name) for namespace, name in inputs)
    task.outlets.extend(Dataset(namespace=namespace, name=name) for namespace, name in outputs)
