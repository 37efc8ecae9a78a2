"""Off-host archive: sealed segments copied to object storage, and read back from it."""
