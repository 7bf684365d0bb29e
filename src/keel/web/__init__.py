"""Keel web."""
