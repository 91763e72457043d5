"""Agents: per-symbol bars, indicators and strategies that turn market data into signals."""
