"""The crash-safe journal: segment files of checksummed records (format in docs/journal-format.md)."""
