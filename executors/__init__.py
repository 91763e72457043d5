"""Signals to orders: ledger, risk, reconciliation and broker adapters."""
