"""Local servers that speak the wire protocols of venues and data vendors, for tests."""
