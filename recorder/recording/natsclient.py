"""A nats-py Client that keeps every header value: NATS headers can repeat a name.

nats-py parses headers into a dict, so a name sent twice keeps only its last value. The recorder
must journal headers exactly, and replay must send them back the same way, so headers arrive as
`HeaderPairs`: still the dict nats-py's API promises (last value per name), plus every pair in
arrival order. Publishing a `HeaderPairs` sends every pair, since nats-py encodes `items()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from nats.aio.client import Client
from nats.aio.subscription import Subscription

from recorder.journal.record import Headers


class HeaderPairs(dict[str, str]):
    """A header dict (last value per name) that also keeps every (name, value) pair in order."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs: Headers = tuple(pairs)
        super().__init__(self.pairs)

    def items(self) -> Any:  # a view of every pair, not of the dict's unique keys
        # nats-py's publish encodes `items()`; give it every pair, repeats included.
        return _PairsView(self)


class _PairsView:
    def __init__(self, headers: HeaderPairs) -> None:
        self._pairs = headers.pairs

    def __iter__(self) -> Any:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


# What a direct handler gets: subject, reply, headers (or None), payload.
DirectHandler = Callable[[str, str, "dict[str, str] | None", bytes], None]


class RecordingClient(Client):
    """nats-py's Client, parsing header lines into HeaderPairs, with direct delivery.

    nats-py hands every message to a per-subscription asyncio queue and a task that awaits the
    callback: two hops and a task switch per message. Subscriptions registered with
    `deliver_directly` skip both: the protocol parser's message goes straight to a plain
    function (the recorder's own bounded intake is the only buffer). Everything else, JetStream
    and request inboxes included, takes nats-py's normal path.
    """

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, DirectHandler] = {}

    def deliver_directly(self, subscription: Subscription, handler: DirectHandler) -> None:
        self._direct[subscription._id] = handler

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes
    ) -> None:
        handler = self._direct.get(sid)
        if handler is None:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        stats = self.stats
        stats["in_msgs"] += 1
        stats["in_bytes"] += len(data)
        parsed = await self._process_headers(headers) if headers else None
        handler(subject.decode(), reply.decode(), parsed, data)

    @staticmethod
    def _parse_header_lines(raw: bytes) -> dict[str, str]:
        pairs = []
        for line in raw.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            try:
                key = name.strip().decode("ascii")
            except UnicodeDecodeError:
                continue
            if key:
                pairs.append((key, value.strip(b" \t").decode("utf-8", "replace")))
        return HeaderPairs(pairs)


async def connect(**options: Any) -> RecordingClient:
    client = RecordingClient()
    await client.connect(**options)
    return client
