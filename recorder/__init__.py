"""meshsync-recorder: journal a MeshSync NATS stream, replay it, compact it into snapshots."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meshsync-recorder")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
