"""Keel worker."""
