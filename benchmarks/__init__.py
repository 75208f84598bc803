"""Benchmarks (run as scripts or modules; never part of the test suite)."""
