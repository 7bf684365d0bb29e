"""Keel's use cases. They take stores as arguments and know nothing of HTTP."""
