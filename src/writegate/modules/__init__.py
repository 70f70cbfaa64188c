"""API modules, one package per documented API."""
