"""Synthetic agencies and events for demos, tests and benchmarks: not part of the product."""
