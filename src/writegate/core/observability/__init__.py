"""Logs, metrics, traces and health probes: what an operator sees of a writegate process.

Importing this package loads neither prometheus-client nor OpenTelemetry; each submodule
imports what it needs.
"""
