"""Recorder: every fact from the bus into the append-only log, and the read models."""
