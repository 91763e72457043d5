"""The paper venue: tick-level fills against md.* and its own durable record of what it received.

It runs in the executor's process but keeps its store in its own SQLite file (`store.py`),
separate from the executor's ledger, so an executor crash cannot erase what the venue saw, and
`ticklane paper orders|fills` read that record without trusting the executor.
"""
