"""Local servers that speak venues\x27 and data vendors\x27 wire protocols, for tests."""
