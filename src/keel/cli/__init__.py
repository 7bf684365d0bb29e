"""Keel cli."""
