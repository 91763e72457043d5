"""Local stand-ins for the venues ticklane trades at, for tests and demos.

Each fake is a server on 127.0.0.1 that speaks its venue's documented wire protocol closely
enough that the venue's own SDK drives it unpatched, keeps its own durable record of what it
received, and injects the faults a real venue produces on request.
"""
