"""The worker processes, an entry point above the layers: ``loreweave worker`` (the pipeline's
workers in the foreground until interrupted: local threads, or Celery workers and the sweeper)
and what a Celery worker runs for a message (``celery -A loreweave.entrypoints.workers worker -Q
analysis,note_updates,entity_creations -c 4``): claim the most important ready job from the
database (the pipeline's priority policy, across every queue), process it, repeat while work is
ready."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from celery import Celery
from rich.console import Console

from loreweave.bootstrap import build
from loreweave.config import Settings, load_settings
from loreweave.container import Loreweave
from loreweave.errors import DatabaseUnavailable
from loreweave.queue.celery_app import TASK_NAME, make_celery
from loreweave.queue.failing import RepeatedFailure, described, is_outage

log = logging.getLogger("loreweave.queue")
STARTUP_PAUSE = 2.0  # seconds between a starting worker's attempts to reach its database


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def wait_for_database(
    settings: Settings, stop: threading.Event, *, pause: float = STARTUP_PAUSE
) -> Loreweave:
    """The worker's loreweave, built once the database answers: a worker started with (or
    before) its database waits for it, ``pipeline_config.startup_wait`` seconds at most, each
    attempt one warning line; then (or when ``stop`` is set) :class:`DatabaseUnavailable`."""
    deadline = time.monotonic() + settings.pipeline_config.startup_wait
    while True:
        try:
            return build(settings)
        except DatabaseUnavailable as exc:
            left = deadline - time.monotonic()
            if left <= 0 or stop.is_set():
                raise
            log.warning("%s; waiting for it (%.0fs left)", exc, left)
            stop.wait(min(pause, left))


def run_workers(settings: Settings, console: Console, config_file: Path | None = None) -> None:
    stop = _wait_for_signal()
    app = wait_for_database(settings, stop)
    app.alerts.start()
    try:
        if settings.queue_backend == "local":
            workers = app.start_local_workers()
            console.print(f"local workers running: {workers.counts()}; Ctrl-C stops them")
            stop.wait()
            return
        queues = app.kinds.names
        children = _start_celery_workers(settings, queues, config_file)
        console.print(f"celery workers running for queues {', '.join(queues)}; Ctrl-C stops them")
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
    settings: Settings, queues: Sequence[str], config_file: Path | None
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
        "loreweave.entrypoints.workers",
        "worker",
        "-Q",
        ",".join(queues),
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


# -- a Celery worker process ----------------------------------------------------------------------
MAX_JOBS_PER_MESSAGE = 50
_container: Loreweave | None = None
_container_lock = threading.Lock()


def container() -> Loreweave:
    """This worker process's loreweave, built on first use (after Celery forked)."""
    global _container
    with _container_lock:
        if _container is None:
            # a Celery worker's process is on the Celery backend, whatever the file says
            settings = load_settings().model_copy(update={"queue_backend": "celery"})
            _container = build(settings)
        return _container


def run_queue(queue: str, max_jobs: int = MAX_JOBS_PER_MESSAGE) -> int:
    """The one Celery task: ``queue`` has work; run the most important ready jobs (of any
    queue: the priority policy decides) while some are ready, at most ``max_jobs``.  While the
    database is unreachable a message is one warning line (the work waits in the database; the
    sweeper announces it again), never a task error with its traceback."""
    worker_id = f"celery:{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    done = 0
    try:
        lw = container()
        if queue not in lw.kinds.names:
            raise ValueError(f"unknown queue {queue!r}")
        # a prefork process is a pool of one: its calls take what waits
        while done < max_jobs and lw.pipeline.run_next(worker_id, pool=1):
            done += 1
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("%s: the database is unreachable: %s", worker_id, described(exc))
    return done


def worker_celery(settings: Settings) -> Celery:
    """The Celery app of a worker process: the transport's settings and the task it runs."""
    app = make_celery(settings)
    app.task(name=TASK_NAME, bind=False)(run_queue)
    return app


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    # ``celery -A loreweave.entrypoints.workers`` looks up ``app``: built on demand, not at import.
    global _app
    if name == "app":
        if _app is None:
            _app = worker_celery(load_settings())
        return _app
    raise AttributeError(name)
