"""The WeCom (企业微信) group robot: markdown messages, at most 4096 bytes and 20 a minute per robot.

A robot takes ``POST <its address>`` with ``{"msgtype": "markdown", "markdown": {"content": …}}`` and answers
HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``, or another errcode: 45009 when the robot's 20 messages a minute
are spent, 93000 when the address's key names no robot (removed from its group), and others for a malformed
message. Alerts are packed in order into as few messages as fit, and each robot's sends are counted over a
rolling minute so the limit is met before the robot has to refuse; a 45009 anyway (another sender on the same
robot, a restarted worker) waits for the minute to pass, and 93000 disables the subscription as a 410 does.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

__all__ = [
    "MAX_CONTENT_BYTES",
    "RATE_LIMITED",
    "ROBOT_GONE",
    "RobotAnswer",
    "SendWindow",
    "markdown_message",
    "pack",
    "read_answer",
]

MAX_CONTENT_BYTES = 4096
RATE_LIMITED = 45009
ROBOT_GONE = 93000
_SEPARATOR = "\n\n"
_CUT = "\n…"


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def pack(alerts: Sequence[str], limit: int = MAX_CONTENT_BYTES) -> tuple[str, int]:
    """The first message's content and how many of ``alerts`` it holds: as many as fit, in order, at least one.

    An alert longer than the limit on its own is cut at a character boundary and marked, never split over two
    messages (a reader would see half an alert in each).
    """
    if not alerts:
        raise ValueError("nothing to pack")
    content = _fit(alerts[0], limit)
    count = 1
    for alert in alerts[1:]:
        joined = content + _SEPARATOR + alert
        if _size(joined) > limit:
            break
        content, count = joined, count + 1
    return content, count


def _fit(alert: str, limit: int) -> str:
    if _size(alert) <= limit:
        return alert
    room = limit - _size(_CUT)
    return alert.encode("utf-8")[:room].decode("utf-8", errors="ignore") + _CUT


def markdown_message(content: str) -> bytes:
    return json.dumps({"msgtype": "markdown", "markdown": {"content": content}}, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class RobotAnswer:
    outcome: Literal["sent", "rate_limited", "gone", "failed"]
    errcode: int | None
    detail: str


def read_answer(status: int, body: bytes) -> RobotAnswer:
    """What a robot's answer means for the messages it was sent."""
    try:
        answer = json.loads(body)
        errcode, errmsg = int(answer["errcode"]), str(answer.get("errmsg", ""))[:200]
    except (ValueError, KeyError, TypeError):
        return RobotAnswer("failed", None, f"HTTP {status}: not a robot's answer")
    if status != 200:
        return RobotAnswer("failed", errcode, f"HTTP {status}: errcode {errcode} {errmsg}")
    if errcode == 0:
        return RobotAnswer("sent", 0, "ok")
    if errcode == RATE_LIMITED:
        return RobotAnswer("rate_limited", errcode, f"errcode {errcode} {errmsg}: over the robot's 20 a minute")
    if errcode == ROBOT_GONE:
        return RobotAnswer("gone", errcode, f"errcode {errcode} {errmsg}: the robot's key is no longer valid")
    return RobotAnswer("failed", errcode, f"errcode {errcode} {errmsg}")


class SendWindow:
    """Sends to each robot over the last minute, so the worker never sends it more than ``per_minute``."""

    _MINUTE = timedelta(minutes=1)

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: dict[str, deque[datetime]] = {}

    def free_at(self, robot: str, now: datetime) -> datetime | None:
        """None when a message may go now, else when the oldest send in the window leaves it."""
        sent = self._sent.setdefault(robot, deque())
        while sent and sent[0] <= now - self._MINUTE:
            sent.popleft()
        return None if len(sent) < self.per_minute else sent[0] + self._MINUTE

    def record(self, robot: str, now: datetime) -> None:
        self._sent.setdefault(robot, deque()).append(now)

    def full_until(self, robot: str, now: datetime) -> datetime:
        """After the robot said 45009: count it as full for the rolling minute from now."""
        self._sent[robot] = deque([now] * self.per_minute)
        return now + self._MINUTE
