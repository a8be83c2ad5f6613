"""``waterhub deliver --processes 2`` as an operator runs it: two worker processes claiming from one queue on real
PostgreSQL (``FOR UPDATE SKIP LOCKED``), sending to a receiver on loopback, until SIGTERM stops them.

Each worker sends one request at a time (``concurrency`` 1), and the receiver holds the first requests until two
are in flight at once, so the run proves that both processes send side by side; what the receiver got proves that
together they sent every delivery exactly once, in order per subscription.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from sqlalchemy import Engine, func, select

from connectors.simulation import AppServer
from exchange.access.tokens import create_token
from exchange.tables import deliveries
from exchange.webhooks.fanout import fan_out
from exchange.webhooks.subscriptions import create_subscription
from tests.exchange.webhooks.conftest import HUB_ID, publish_stations
from tests.exchange.webhooks.receivers import WebhookReceiver, serve

WATERHUB = str(Path(sys.executable).parent / "waterhub")
SUBSCRIBERS = 6
VERSIONS = 5
# A worker process imports the hub before its first claim: tens of seconds when other suites load the machine.
START_S = 120


@pytest.fixture
def gathering_receiver() -> Iterator[tuple[WebhookReceiver, AppServer]]:
    state = WebhookReceiver(gather=2)
    server = serve(state.app())
    yield state, server
    server.stop()


def _subscribe_all(hub: Engine, base_url: str, state: WebhookReceiver, now: datetime) -> dict[str, str]:
    """``SUBSCRIBERS`` departments' webhooks on stations, each at its own path; subscription id → path name."""
    paths = {}
    for index in range(SUBSCRIBERS):
        token = create_token(hub, "gz-water", ["water_quality.stations"], expires_at=now + timedelta(days=1), now=now)
        name = f"sub{index}"
        made, secret = create_subscription(
            hub,
            department=token.department,
            token_id=token.token_id,
            dataset="water_quality.stations",
            channel="webhook",
            url=f"{base_url}/hooks/{name}",
            wecom_url_prefix="",
            now=now,
        )
        state.secrets[name] = str(secret)
        paths[made.subscription_id] = name
    return paths


def _queued(hub: Engine) -> dict[str, list[str]]:
    """Each subscription's deliveries' webhook-ids in queue order."""
    with hub.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.subscription_id, deliveries.c.message_id).order_by(deliveries.c.id)
        ).all()
    queued: dict[str, list[str]] = {}
    for subscription_id, message_id in rows:
        queued.setdefault(subscription_id, []).append(message_id)
    return queued


def _states(hub: Engine) -> dict[tuple[str, int], int]:
    with hub.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.state, deliveries.c.attempts, func.count()).group_by(
                deliveries.c.state, deliveries.c.attempts
            )
        ).all()
    return {(state, attempts): count for state, attempts, count in rows}


def _workers(pid: int) -> list[psutil.Process]:
    """The worker processes ``deliver`` spawned (not multiprocessing's resource tracker)."""
    return [child for child in psutil.Process(pid).children() if "spawn_main" in " ".join(child.cmdline())]


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_two_processes_deliver_everything_once_in_order_and_stop_on_sigterm(
    hub: Engine, pg_schema_url: str, gathering_receiver: tuple[WebhookReceiver, AppServer], tmp_path: Path
) -> None:
    state, server = gathering_receiver
    now = datetime.now(UTC)  # the workers run on the real clock: what they find due is due now
    paths = _subscribe_all(hub, server.base_url, state, now)
    for version in range(1, VERSIONS + 1):
        publish_stations(hub, version)
    assert fan_out(hub, hub_id=HUB_ID, now=now) == SUBSCRIBERS * VERSIONS  # all pending before any worker starts
    queued = _queued(hub)

    env = {name: value for name, value in os.environ.items() if not name.startswith("WATERHUB_")} | {
        "WATERHUB_DATABASE_URL": pg_schema_url,
        "WATERHUB_DATA_DIR": str(tmp_path / "var"),
        "WATERHUB_HUB_ID": HUB_ID,
        "WATERHUB_WEBHOOKS__CONCURRENCY": "1",
        "WATERHUB_WEBHOOKS__BATCH_SIZE": "2",
        "WATERHUB_WEBHOOKS__POLL_INTERVAL_S": "0.2",
        # longer than the receiver holds its first requests: a timed-out send would be sent again
        "WATERHUB_WEBHOOKS__TIMEOUT_S": str(2 * START_S),
    }
    with (tmp_path / "deliver.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - the venv's own console script
            [WATERHUB, "deliver", "--processes", "2"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_for(lambda: len(_workers(process.pid)) == 2, 60, "two worker processes")
        workers = _workers(process.pid)
        _wait_for(lambda: _states(hub) == {("delivered", 1): SUBSCRIBERS * VERSIONS}, 2 * START_S, "every delivery")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, (tmp_path / "deliver.log").read_text(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert state.most_in_flight == 2  # both processes sent, one request each at a time
    assert state.refused == []
    assert [status for _, _, status in state.answered] == [200] * (SUBSCRIBERS * VERSIONS)  # none sent twice
    got = {path: [item.message_id for item in state.received if item.path == path] for path in paths.values()}
    assert got == {paths[subscription_id]: message_ids for subscription_id, message_ids in queued.items()}
    assert not any(worker.is_running() for worker in workers)  # the workers ended with their parent
