"""Benchmarks: what the coordinator costs on top of the bare shell recipe (`python -m bench`)."""
