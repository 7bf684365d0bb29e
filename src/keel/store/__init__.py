"""Keel store."""
