"""A local TastyTrade server: REST API, OAuth token endpoint and account streamer on 127.0.0.1.

The real `tastytrade` SDK drives it unpatched through its public transport argument: the
adapters' `RewritingTransport(url)` (`executors/brokers/transport.py`), which sends
REST and the account streamer's websocket to the fake. It keeps its own record of every
order and fill (`record.py`), fills against md.* the way the paper venue does
(`matching.py`), and injects faults on request (`faults.py`). `ticklane fake tastytrade` runs
it (`cli.py`).
"""
