"""The systemd notify protocol: READY, WATCHDOG, STATUS and STOPPING datagrams."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    """Sends to $NOTIFY_SOCKET when systemd set it; otherwise every call is a no-op."""

    def __init__(self, env: Mapping[str, str]) -> None:
        address = env.get("NOTIFY_SOCKET", "")
        # A leading "@" names a socket in the abstract namespace.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval_s = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **state: str) -> bool:
        if not self.address:
            return False
        message = "\n".join(f"{key.upper()}={value}" for key, value in state.items())
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            # Called on the event loop: a receiver that stopped reading (its queue full) must
            # cost this datagram, never block recording.
            sock.setblocking(False)
            try:
                sock.connect(self.address)
                sock.sendall(message.encode())
            except OSError:
                return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(ready="1", status=status)

    def watchdog(self) -> bool:
        return self.send(watchdog="1")

    def status(self, status: str) -> bool:
        return self.send(status=status)

    def stopping(self) -> bool:
        return self.send(stopping="1")


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of WATCHDOG_USEC, when the watchdog is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000
