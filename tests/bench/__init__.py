"""Benchmarks: `make bench` prints their figures as a table. They are never tests."""
