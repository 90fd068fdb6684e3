"""Reliability and security tests: faults, concurrency, fork safety, trust boundary, secrets."""
