"""The tests' own receivers on real loopback sockets: a department's webhook endpoint and a WeCom group robot.

The webhook receiver checks every request with the ``standardwebhooks`` library, as a department's system would,
and answers what the test planned (500s, then 200; 410). The robot imitates the WeCom API: its errcodes, its
4096-byte content limit and its 20 messages a minute per robot, counted on the test's clock.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from connectors.simulation import AppServer


@dataclass(frozen=True)
class Received:
    """A request that passed verification: its webhook-id and its parsed CloudEvent."""

    path: str
    message_id: str
    event: dict[str, object]


@dataclass
class WebhookReceiver:
    secrets: dict[str, str] = field(default_factory=dict)
    plan: deque[int] = field(default_factory=deque)
    always: int | None = None
    received: list[Received] = field(default_factory=list)
    answered: list[tuple[str, str, int]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gather: int = 1  # requests are held until this many are in flight at once (then none is held any more)
    in_flight: int = 0
    most_in_flight: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{name}")
        async def hook(name: str, request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await self._gathered()
                return self._answer(name, request, body)
            finally:
                with self.lock:
                    self.in_flight -= 1

        return app

    async def _gathered(self, timeout_s: float = 120) -> None:
        """Wait until ``gather`` requests were in flight at once: proof that that many senders work side by side."""
        deadline = time.monotonic() + timeout_s
        while self.most_in_flight < self.gather and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def _answer(self, name: str, request: Request, body: bytes) -> Response:
        with self.lock:
            secret = self.secrets.get(name)
            status = self.always or (self.plan.popleft() if self.plan else 200)
            message_id = request.headers.get("webhook-id", "")
            if secret is None:
                self.refused.append(f"{name}: no secret")
                return Response(status_code=404)
            try:
                event = Webhook(secret).verify(body, dict(request.headers))
            except WebhookVerificationError as exc:
                self.refused.append(f"{name}: {exc}")
                return Response(status_code=400)
            self.answered.append((name, message_id, status))
            if 200 <= status < 300:
                self.received.append(Received(name, message_id, event))
        return Response(status_code=status)

    def events(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [item.event for item in self.received if item.path == name]


@dataclass(frozen=True)
class RobotMessage:
    key: str
    at: datetime
    content: str


@dataclass
class WeComRobot:
    """``POST /cgi-bin/webhook/send?key=K``, answering as WeCom does."""

    clock: Callable[[], datetime]
    keys: set[str] = field(default_factory=set)
    per_minute: int = 20
    plan: deque[int] = field(default_factory=deque)
    messages: list[RobotMessage] = field(default_factory=list)
    errcodes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/cgi-bin/webhook/send")
        async def send(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                errcode = self._judge(request.query_params.get("key", ""), body)
                self.errcodes.append(errcode)
            messages = {0: "ok", 45009: "api freq out of limit", 93000: "invalid webhook url", 40058: "invalid"}
            return Response(
                json.dumps({"errcode": errcode, "errmsg": messages.get(errcode, "error")}),
                media_type="application/json",
            )

        return app

    def _judge(self, key: str, body: bytes) -> int:
        if key not in self.keys:
            return 93000
        if self.plan:
            return self.plan.popleft()
        now = self.clock()
        recent = [m for m in self.messages if m.key == key and m.at > now - timedelta(minutes=1)]
        if len(recent) >= self.per_minute:
            return 45009
        try:
            message = json.loads(body)
            content = message["markdown"]["content"]
        except (ValueError, KeyError, TypeError):
            return 40058
        if message.get("msgtype") != "markdown" or len(content.encode("utf-8")) > 4096:
            return 40058
        self.messages.append(RobotMessage(key, now, content))
        return 0


def serve(app: FastAPI, port: int = 0) -> AppServer:
    server = AppServer(app, "127.0.0.1", port, name="test receiver")
    server.start()
    return server
