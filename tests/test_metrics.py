"""Metrics: each process has its own registry, exposed over HTTP."""

import socket
import urllib.request

from prometheus_client import generate_latest

from storage.metrics import Metrics


def test_registries_are_independent() -> None:
    a, b = Metrics(), Metrics()
    a.jobs.labels(kind="imagine", status="succeeded").inc()
    a.ack_seconds.observe(0.02)
    text_a = generate_latest(a.registry).decode()
    text_b = generate_latest(b.registry).decode()
    assert 'imagine_jobs_total{kind="imagine",status="succeeded"} 1.0' in text_a
    assert 'status="succeeded"' not in text_b
    assert "imagine_interaction_ack_seconds_count 1.0" in text_a


def test_serve_exposes_metrics_over_http() -> None:
    metrics = Metrics()
    metrics.queue_depth.set(7)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    metrics.serve(port, addr="127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "imagine_queue_depth 7.0" in body
