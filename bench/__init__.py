"""Benchmarks: writegate against its peers, printed as one table (never asserted on time)."""
