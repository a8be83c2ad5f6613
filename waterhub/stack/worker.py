"""What a Celery worker of the stack calls itself in Airflow (``[core] hostname_callable``).

Airflow records the host a task instance ran on; the stack's workers share one machine, so each names itself after
its Celery node (``WATERHUB_STACK_WORKER``, set by the launcher) and a task instance shows which worker ran it.
"""

from __future__ import annotations

import os
import socket

__all__ = ["WORKER_VARIABLE", "worker_hostname"]

WORKER_VARIABLE = "WATERHUB_STACK_WORKER"


def worker_hostname() -> str:
    return os.environ.get(WORKER_VARIABLE) or socket.getfqdn()
