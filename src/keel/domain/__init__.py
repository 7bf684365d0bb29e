"""Entities, enums, state machines and pure rules. No I/O; imports the standard library only."""
