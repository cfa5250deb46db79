"""Processes: spawning, adopting and stopping them, single-instance daemons, and simulated hosts to run them on."""
