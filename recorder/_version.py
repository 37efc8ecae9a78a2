"""The package version: its one home, read by pyproject.toml at build time and by the CLI."""

__version__ = "0.1.0"
