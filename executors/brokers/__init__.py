"""Broker adapters behind one interface (`base.Broker`): paper now; TastyTrade and Schwab later."""
