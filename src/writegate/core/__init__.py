"""The shared core: jobs, workers, auth, tokens, audit; no API-specific code."""
