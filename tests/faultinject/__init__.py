"""Fault injection into the product's real write and fsync calls: EIO, ENOSPC and slow fsyncs.

faultfs.c (LD_PRELOAD) makes the calls on the journal's segment files fail or stall while the
test says so; faultfs.py builds it and switches it; the tests run the real daemon under it in
both modes and write their figures to $FAULTS_REPORT (default build/reliability/faults.json).
"""
