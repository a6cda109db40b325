"""Benchmarks, each run as a module (``python -m bench.NAME``) and printing one JSON object."""
