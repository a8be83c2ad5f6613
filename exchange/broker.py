"""The zero-setup broker: amqtt inside this process, so a hub on defaults needs no Mosquitto to send change events.

amqtt is asyncio-only and the hub is synchronous, so the broker gets an event loop of its own on a daemon thread;
the caller's thread only hands it start and shutdown and waits, bounded, for each. It keeps nothing on disk (a
restart forgets sessions and queued messages) and binds to loopback by default, which is why anonymous access is
allowed. Servers run Mosquitto instead (infra/mosquitto/mosquitto.conf).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from types import TracebackType
from typing import Any

from amqtt.broker import Broker
from amqtt.errors import BrokerError

from exchange.errors import StoreUnavailableError

__all__ = ["EmbeddedBroker"]

_PORT_HINT = (
    "Another `waterhub broker` or demo may be running: stop it, set WATERHUB_EMBEDDED_MQTT_PORT to a free port, "
    "or set WATERHUB_MQTT_URL to use the broker that is there."
)


class EmbeddedBroker:
    """amqtt's Broker on ``host:port``; ``__enter__`` returns once the port accepts MQTT connections.

    The port must be given (no port 0): amqtt does not report the port it bound, and subscribers need the URL.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 11883, *, start_timeout_s: float = 10.0, stop_timeout_s: float = 15.0
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"port={port!r}: pick a port between 1 and 65535 (amqtt cannot report an OS-chosen one)")
        self.host = host
        self.port = port
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._running: tuple[asyncio.AbstractEventLoop, threading.Thread, Any] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"

    def __enter__(self) -> EmbeddedBroker:
        if self._running is not None:
            raise RuntimeError(f"the embedded broker at {self.url} is already running")
        _quiet_library_logging()
        self._refuse_taken_port()
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"waterhub-broker-{self.port}", daemon=True)
        thread.start()
        started = False
        try:
            broker = asyncio.run_coroutine_threadsafe(self._start(), loop).result(self.start_timeout_s)
            started = True
        except BrokerError as exc:
            raise StoreUnavailableError(
                f"the embedded MQTT broker could not listen on {self.host}:{self.port} ({exc.__cause__ or exc}). "
                + _PORT_HINT
            ) from exc
        except TimeoutError as exc:
            raise StoreUnavailableError(
                f"the embedded MQTT broker did not start on {self.host}:{self.port} within {self.start_timeout_s:g} s. "
                + _PORT_HINT
            ) from exc
        finally:
            if not started:
                _stop_loop(loop, thread, self.stop_timeout_s)
        self._running = (loop, thread, broker)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._running is None:
            return
        loop, thread, broker = self._running
        self._running = None
        try:
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(self.stop_timeout_s)
        finally:
            _stop_loop(loop, thread, self.stop_timeout_s)

    async def _start(self) -> Any:
        # Built on the broker's own loop: amqtt's Broker creates futures for the running loop in its constructor.
        # By the time start() returns, asyncio's server has called listen(), so the port accepts connections.
        broker = Broker(_config(self.host, self.port), loop=asyncio.get_running_loop())
        await broker.start()
        return broker

    def _refuse_taken_port(self) -> None:
        """Find a taken port before amqtt does: amqtt logs the failure as an error with a traceback of its own.

        SO_REUSEADDR as asyncio's server sets it, so connections of a broker that just stopped (TIME_WAIT) do not
        count as taken, and a broker that is listening does.
        """
        family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise StoreUnavailableError(
                    f"port {self.host}:{self.port} is taken ({exc.strerror or exc}), so the embedded MQTT broker "
                    "cannot start. " + _PORT_HINT
                ) from exc


def _config(host: str, port: int) -> dict[str, Any]:
    """One TCP listener and anonymous access; amqtt's other default plugins (packet logging, $SYS topics) stay off.

    Naming plugins explicitly also avoids amqtt's deprecated entry-point loading and its $SYS plugin's
    DeprecationWarning about psutil.
    """
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread, timeout_s: float) -> None:
    """Cancel what amqtt left on the loop, stop it and close it, so no task is destroyed pending and no socket leaks."""
    asyncio.run_coroutine_threadsafe(_cancel_remaining(), loop).result(timeout_s)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout_s)
    if not thread.is_alive():
        loop.close()


async def _cancel_remaining() -> None:
    current = asyncio.current_task()
    remaining = [task for task in asyncio.all_tasks() if task is not current]
    for task in remaining:
        task.cancel()
    await asyncio.gather(*remaining, return_exceptions=True)
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


def _quiet_library_logging() -> None:
    """amqtt logs every connection at INFO, and ``transitions`` (its state machines) every state change.

    The hub's own logs say what matters, and a failure to start reaches the caller as an exception, so both are
    raised to ERROR/WARNING. A level an entry point set on purpose is left alone.
    """
    for name, level in (("amqtt", logging.ERROR), ("transitions", logging.WARNING)):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
