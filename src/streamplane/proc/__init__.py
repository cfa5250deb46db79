"""Processes: spawning, adopting and stopping them, and single-instance daemons."""
