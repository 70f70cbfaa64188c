"""writegate: trustworthy write APIs on one durable job core."""

__version__ = "0.1.0"
