"""Prometheus metrics shared by the bot and the workers.

A ``Metrics`` object is built once per process in ``main`` with its own registry and passed to
the bot and the worker; ``serve`` exposes it over HTTP when ``IMAGINE_METRICS_PORT`` is set.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_JOB_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


class Metrics:
    """The service's metrics, registered in a private registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("imagine_queue_depth", "Jobs waiting to run", registry=r)
        self.running_jobs = Gauge("imagine_running_jobs", "Jobs running now", registry=r)
        self.jobs = Counter(
            "imagine_jobs", "Jobs that reached a final status", ["kind", "status"], registry=r
        )
        self.wait_seconds = Histogram(
            "imagine_job_wait_seconds",
            "Time from enqueue to claim",
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self.run_seconds = Histogram(
            "imagine_job_run_seconds",
            "Time from claim to finish",
            ["kind"],
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self.gpu_seconds = Counter(
            "imagine_gpu_seconds", "Seconds the pipeline held the device", registry=r
        )
        self.ack_seconds = Histogram(
            "imagine_interaction_ack_seconds",
            "Time from receiving an interaction to acknowledging it",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "imagine_deliveries", "Results posted to Discord", ["outcome"], registry=r
        )

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Expose ``/metrics`` on ``port`` from a background thread."""
        start_http_server(port, addr=addr, registry=self.registry)
