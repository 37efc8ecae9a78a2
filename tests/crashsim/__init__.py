"""Crash simulation: log a real process's file-system calls, rebuild what a power loss could leave."""
