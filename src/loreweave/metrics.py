"""Prometheus metrics: queue depths and task latency (the queue status's figures, read from the
database at scrape time), LLM calls, tokens and errors (from the providers' call statistics),
and turn overhead."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loreweave.db.engine import Database
from loreweave.db.models import utcnow
from loreweave.llm.resilience import CallStats
from loreweave.queue import status
from loreweave.queue.jobs import Kinds

LATENCY_WINDOW = timedelta(minutes=5)


class _StateCollector(Collector):
    def __init__(self, database: Database, kinds: Kinds, stats: CallStats) -> None:
        self.database = database
        self.kinds = kinds
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
        with self.database.uow(read_only=True) as uow:
            for kind in self.kinds:
                read = status.figures(uow.session, kind, now, window=LATENCY_WINDOW)
                for state, count in read.counts.items():
                    depth.add_metric([kind.name, state], float(count))
                oldest.add_metric([kind.name], read.oldest_pending_seconds or 0.0)
                if read.mean_latency_seconds is not None:
                    latency.add_metric([kind.name], read.mean_latency_seconds)
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
    def __init__(self, database: Database, kinds: Kinds, stats: CallStats) -> None:
        self.registry = CollectorRegistry()
        self.turn_overhead = Histogram(
            "loreweave_turn_overhead_seconds",
            "The system's own time in a turn: everything but the main LLM call",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
            registry=self.registry,
        )
        self.registry.register(_StateCollector(database, kinds, stats))

    def observe_turn(self, seconds: float) -> None:
        self.turn_overhead.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
