"""Keel api."""
