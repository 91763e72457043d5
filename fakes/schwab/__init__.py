"""A local Schwab Trader API server: REST, OAuth token endpoint and streamer on 127.0.0.1.

The real schwab-py drives it unpatched: a client built the way `client_from_access_functions`
builds one, with a transport that sends every request here (`client.py`), refreshes its
tokens at the fake's `/v1/oauth/token` and finds the streamer through `userPreference`. The
fake keeps its own record of every order and fill (`record.py`), fills against md.* the way
the paper venue does (`matching.py`, through the TastyTrade fake's), and injects faults on
request (`faults.py`), an expired seven-day refresh token among them. `ticklane fake schwab`
runs it (`cli.py`).
"""
