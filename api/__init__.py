"""The FastAPI service: positions, orders, controls, metrics and the dashboard."""
