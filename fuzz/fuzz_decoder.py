"""Atheris harness: the MeshSync decoder and the compactor on arbitrary payloads never raise.

    .venv/bin/python fuzz/fuzz_decoder.py -atheris_runs=100000 [-max_len=4096] [corpus_dir]

Each input is split into a few payloads on the core, request and store subjects; each is decoded,
all are compacted in order, and the live objects are rendered in every snapshot format.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from recorder.compact.snapshot import render_json, render_meshsync, render_yaml, snapshot_meta
    from recorder.compact.state import compact
    from recorder.journal.record import Message
    from recorder.meshsync import CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT, decode

SUBJECTS = (CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT, "other")
# Seeds that reach past the JSON parser quickly; atheris mutates them into the rest.
PREFIXES = (
    b"",
    b'{"ObjectType":"meshsync-data","EventType":"ADDED","Object":',
    b'{"ObjectType":"","EventType":"","Object":[',
    b'{"type":"MODIFIED","object":',
    b'{"Request":{"Entity":"informer-store","Payload":',
)


def TestOneInput(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    messages = []
    for seq in range(1, provider.ConsumeIntInRange(1, 4) + 1):
        prefix = PREFIXES[provider.ConsumeIntInRange(0, len(PREFIXES) - 1)]
        subject = SUBJECTS[provider.ConsumeIntInRange(0, len(SUBJECTS) - 1)]
        payload = prefix + provider.ConsumeBytes(provider.ConsumeIntInRange(0, 512))
        decode(payload, subject)
        messages.append(Message(seq, seq * 10**9, subject, "", None, payload, None))
    compactor, stats = compact(messages)
    objects = compactor.objects()
    meta = snapshot_meta(objects, stats)
    render_yaml(objects, meta)
    render_json(objects, meta)
    render_meshsync(objects)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
