"""meshsync-recorder: journal a MeshSync NATS stream, replay it, compact it into snapshots."""

# A literal, not importlib.metadata: the metadata lookup costs more than `recorder --help` itself.
from recorder._version import __version__

__all__ = ["__version__"]
