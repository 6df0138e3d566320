"""Where alerts go: the log at ERROR always, and a webhook (JSON, Slack or Discord payloads)
posted from a background thread with retries and a timeout, so no turn or worker ever waits."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
from tenacity import Retrying, stop_after_attempt, wait_exponential

from loreweave.config import AlertConfig

log = logging.getLogger("loreweave.alerts")


@dataclass(frozen=True)
class Notification:
    key: str
    state: Literal["firing", "resolved"]
    summary: str
    details: dict[str, Any]
    at: datetime

    def text(self) -> str:
        mark = "FIRING" if self.state == "firing" else "resolved"
        return f"[loreweave] {mark} {self.key}: {self.summary}"


def payload(note: Notification, fmt: str) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": note.text()}
    if fmt == "discord":
        return {"content": note.text()[:2000]}
    return {
        "alert": note.key,
        "state": note.state,
        "summary": note.summary,
        "details": note.details,
        "at": note.at.isoformat(),
    }


class AlertSink:
    def __init__(self, config: AlertConfig, webhook_url: str | None) -> None:
        self.config = config
        self.webhook_url = webhook_url
        self._queue: queue.Queue[Notification] = queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None
        self.sent = 0  # webhook posts that succeeded (for the operator and the tests)

    def send(self, note: Notification) -> None:
        if note.state == "firing":
            log.error("%s", note.text())
        else:
            log.warning("%s", note.text())
        if self.webhook_url is None:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._post_all, daemon=True, name="alerts")
            self._thread.start()
        try:
            self._queue.put_nowait(note)
        except queue.Full:
            log.error("alert webhook queue full: %s not sent", note.key)

    def _post_all(self) -> None:
        assert self.webhook_url is not None
        with httpx.Client(timeout=self.config.webhook_timeout) as client:
            while True:
                note = self._queue.get()
                try:
                    for attempt in Retrying(
                        stop=stop_after_attempt(self.config.webhook_attempts),
                        wait=wait_exponential(multiplier=0.5, max=10),
                        reraise=True,
                    ):
                        with attempt:
                            response = client.post(
                                self.webhook_url, json=payload(note, self.config.webhook_format)
                            )
                            response.raise_for_status()
                    self.sent += 1
                except httpx.HTTPError as exc:  # the URL is a secret: name only the failure
                    log.error(
                        "alert %s not delivered to the webhook: %s", note.key, type(exc).__name__
                    )
