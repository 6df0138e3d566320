"""Prometheus metrics: queue depths and task latency (read from the database at scrape time),
LLM calls, tokens and errors (from the providers' call statistics), and turn overhead."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from loreweave.db.engine import Database
from loreweave.db.models import TaskStatus, utcnow
from loreweave.llm.resilience import CallStats
from loreweave.queue.jobs import KINDS

LATENCY_WINDOW = timedelta(minutes=5)


class _StateCollector(Collector):
    def __init__(self, database: Database, stats: CallStats) -> None:
        self.database = database
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "loreweave_queue_tasks", "Tasks per queue and status", labels=["queue", "status"]
        )
        latency = GaugeMetricFamily(
            "loreweave_task_latency_seconds",
            "Mean time from a task's creation to its completion, over the last five minutes",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "loreweave_queue_oldest_pending_seconds",
            "Age of the oldest pending job of each queue (0 when none waits)",
            labels=["queue"],
        )
        now = utcnow()
        since = now - LATENCY_WINDOW
        with self.database.uow(read_only=True) as uow:
            for name, kind in KINDS.items():
                model = kind.model
                counts: dict[str, int] = dict(
                    uow.session.execute(
                        select(model.status, func.count()).group_by(model.status)
                    ).all()
                )
                for state in TaskStatus:
                    depth.add_metric([name, state.value], float(counts.get(state.value, 0)))
                first = uow.session.scalar(
                    select(func.min(model.created_at)).where(
                        model.status == TaskStatus.PENDING.value
                    )
                )
                oldest.add_metric([name], (now - first).total_seconds() if first else 0.0)
                done = uow.session.execute(
                    select(model.created_at, model.processed_at).where(
                        model.status == TaskStatus.DONE.value, model.processed_at >= since
                    )
                ).all()
                seconds = [(end - start).total_seconds() for start, end in done if end is not None]
                if seconds:
                    latency.add_metric([name], sum(seconds) / len(seconds))
        yield depth
        yield latency
        yield oldest
        families = {
            what: CounterMetricFamily(f"loreweave_llm_{what}", help_, labels=["provider", "prompt"])
            for what, help_ in (
                ("calls", "LLM and embedding provider calls"),
                ("errors", "Failed provider calls"),
                ("retries", "Provider calls retried"),
                ("prompt_tokens", "Prompt tokens sent"),
                ("completion_tokens", "Completion tokens received"),
                ("rate_limited_ms", "Milliseconds calls waited for the configured rate limit"),
            )
        }
        for (provider, prompt, what), value in self.stats.snapshot().items():
            if what in families:
                families[what].add_metric([provider, prompt], float(value))
        yield from families.values()


class Metrics:
    def __init__(self, database: Database, stats: CallStats) -> None:
        self.registry = CollectorRegistry()
        self.turn_overhead = Histogram(
            "loreweave_turn_overhead_seconds",
            "The system's own time in a turn: everything but the main LLM call",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
            registry=self.registry,
        )
        self.registry.register(_StateCollector(database, stats))

    def observe_turn(self, seconds: float) -> None:
        self.turn_overhead.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
