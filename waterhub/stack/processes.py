"""The stack's processes, each started in a session of its own and recorded in a pid file, so stopping the stack
stops exactly what it started: the process group of each pid file, then any descendant that left its group, found
by the marker variable every one of them inherits. A pid file also holds the process's start time, so a pid the
kernel has since given to another program is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

__all__ = ["MARKER", "ProcessTable"]

MARKER = "WATERHUB_STACK_ID"
"""Environment variable every process of a stack inherits: the stack's state folder, which names the stack."""


class ProcessTable:
    """The pid files of one stack, under ``<state_dir>/pids``; the stack's logs go to ``<state_dir>/logs``."""

    def __init__(self, state_dir: Path) -> None:
        self.stack_id = str(state_dir)
        self.pid_dir = state_dir / "pids"
        self.log_dir = state_dir / "logs"
        self._started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """Start ``command`` as service ``name`` (output to ``logs/<name>.log``) and record it."""
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(name).open("ab") as log:
            started = subprocess.Popen(  # noqa: S603 - our own programs from the project's environment
                list(command),
                env={**env, MARKER: self.stack_id},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started.append(started)
        (self.pid_dir / f"{name}.pid").write_text(f"{started.pid} {psutil.Process(started.pid).create_time()}\n")
        return started

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def running(self) -> dict[str, psutil.Process]:
        """Each recorded service whose process still runs (and is still the one we started)."""
        alive: dict[str, psutil.Process] = {}
        for pid_file in sorted(self.pid_dir.glob("*.pid")):
            process = _recorded_process(pid_file)
            if process is not None:
                alive[pid_file.stem] = process
        return alive

    def stop_all(self, timeout_s: float = 10.0) -> list[str]:
        """SIGTERM every recorded process group, SIGKILL what is left after ``timeout_s``; returns the services
        stopped. Pid files go once their process has ended."""
        services = self.running()
        for process in services.values():
            _signal_group(process.pid, signal.SIGTERM)
        stragglers = self.descendants_left()
        for process in stragglers:
            _signal(process, signal.SIGTERM)
        victims = [*services.values(), *stragglers, *self.descendants_left()]
        _, alive = psutil.wait_procs(victims, timeout=timeout_s)
        for process in alive:
            _signal_group(process.pid, signal.SIGKILL)
            _signal(process, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
        deadline = time.monotonic() + 5
        while self.descendants_left() and time.monotonic() < deadline:
            for process in self.descendants_left():
                _signal(process, signal.SIGKILL)
            time.sleep(0.1)
        for pid_file in self.pid_dir.glob("*.pid"):
            pid_file.unlink()
        for started in self._started:  # reaped: what this process started has ended, and Python knows it
            started.wait(timeout=5)
        self._started.clear()
        return sorted(services)

    def descendants_left(self) -> list[psutil.Process]:
        """Processes that carry this stack's marker, whatever their group: what a stop must not leave behind."""
        found = []
        for process in psutil.process_iter():
            try:
                if process.environ().get(MARKER) == self.stack_id:
                    found.append(process)
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        return found


def _recorded_process(pid_file: Path) -> psutil.Process | None:
    try:
        pid_text, created = pid_file.read_text().split()
        process = psutil.Process(int(pid_text))
        if abs(process.create_time() - float(created)) > 0.01 or process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except (ValueError, psutil.NoSuchProcess, FileNotFoundError):
        return None


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _signal(process: psutil.Process, signum: signal.Signals) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(signum)
