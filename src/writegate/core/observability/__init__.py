"""Logs, metrics, traces and health probes: what an operator sees of a writegate process.

Importing this package loads neither prometheus-client nor OpenTelemetry; each submodule
imports what it needs. It does create PROMETHEUS_MULTIPROC_DIR if that is set: in
multi-process mode prometheus-client opens its files there as soon as a metric is defined.
"""

import os as _os

if _os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _os.makedirs(_os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
