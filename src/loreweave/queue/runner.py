"""``loreweave worker``: run the pipeline's workers in the foreground until interrupted."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from rich.console import Console

from loreweave.bootstrap import build
from loreweave.config import Settings
from loreweave.queue.failing import RepeatedFailure
from loreweave.queue.notify import QUEUES

log = logging.getLogger("loreweave.queue")


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def run_workers(settings: Settings, console: Console, config_file: Path | None = None) -> None:
    stop = _wait_for_signal()
    app = build(settings)
    app.alerts.start()
    try:
        if settings.queue_backend == "local":
            workers = app.start_local_workers()
            console.print(f"local workers running: {workers.counts()}; Ctrl-C stops them")
            stop.wait()
            return
        children = _start_celery_workers(settings, config_file)
        console.print(f"celery workers running for queues {', '.join(QUEUES)}; Ctrl-C stops them")
        interval = settings.pipeline_config.sweep_interval
        failures = RepeatedFailure(log, "sweeper")
        while not stop.wait(interval):
            try:
                app.pipeline.sweep()  # expired leases back to pending; re-announce ready work
            except Exception as exc:
                failures.failed(exc, f"retrying in {interval:.0f}s")
            else:
                failures.succeeded()
            for child in children:
                if child.poll() is not None:
                    raise SystemExit(f"a celery worker exited with code {child.returncode}")
        for child in children:
            child.terminate()
        for child in children:
            child.wait(30)
    finally:
        app.close()


def _start_celery_workers(
    settings: Settings, config_file: Path | None
) -> list[subprocess.Popen[bytes]]:
    """One Celery worker on every queue, one process per LLM call in flight."""
    env = dict(os.environ)
    if config_file is not None:
        env["LOREWEAVE_CONFIG"] = str(config_file)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "loreweave.queue.celery_app",
        "worker",
        "-Q",
        ",".join(QUEUES),
        "-c",
        str(settings.provider_config.calls_in_flight),
        "-n",
        "loreweave@%h",
        "--loglevel",
        settings.log_level,
        "--without-gossip",
        "--without-mingle",
    ]
    return [subprocess.Popen(command, env=env)]  # noqa: S603 - our own interpreter
