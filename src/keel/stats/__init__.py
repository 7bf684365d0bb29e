"""Keel stats."""
