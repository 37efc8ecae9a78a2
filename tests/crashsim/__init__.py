"""Crash simulation: log a real process's file-system calls, rebuild what a power loss could leave.

fslog.c (LD_PRELOAD) logs the calls, oplog reads the log, states builds the crash states, checker
recovers each one with the product and compares it with the log. The figures of a run go to
$CRASHSIM_REPORT (default build/reliability/crashsim.json); a failure prints its seed, and
CRASHSIM_SEED replays it.
"""
