"""`recorder history`: every version that was sent, in order, as separate lives per uid."""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest
import yaml

from recorder.meshsync import DELETED, ObjectEvent

from ._helpers import Recorded, cli, published_events

Identity = tuple[str, str, str, str]  # cluster, kind, namespace, name


def expected_lives(events: list[ObjectEvent]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Per uid in order of appearance: (event type, resourceVersion) of each new version."""
    lives: dict[str, list[tuple[str, str]]] = {}
    for event in events:
        versions = lives.setdefault(event.uid, [])
        if versions and event.type != DELETED and versions[-1][1] == event.resource_version:
            continue  # a re-list repeating the version it already had
        versions.append((event.type, event.resource_version))
    return list(lives.items())


def recreated(recorded: Recorded) -> tuple[Identity, list[ObjectEvent]]:
    """A Deployment the simulator deleted and re-created under the same name, with its events."""
    by_name: dict[Identity, list[ObjectEvent]] = defaultdict(list)
    for event in published_events(recorded.messages):
        by_name[(event.cluster_id, event.kind, event.namespace, event.name)].append(event)
    for identity, events in by_name.items():
        if identity[1] == "Deployment" and len({e.uid for e in events}) > 1:
            return identity, events
    raise AssertionError("the simulation re-created no Deployment; pick another seed")


def test_json_lists_every_version_sent_with_separate_lives(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each uid is a life; its versions are exactly the versions published, deletion included."""
    (cluster, kind, namespace, name), events = recreated(recorded)
    code, out, err = cli(
        capsys,
        "history",
        recorded.directory,
        f"{kind.lower()}/{name}",
        "-n",
        namespace,
        "--cluster",
        cluster,
        "-o",
        "json",
    )
    assert code == 0, err
    got = orjson.loads(out)
    want = expected_lives(events)
    assert [life["uid"] for life in got["lives"]] == [uid for uid, _ in want]
    assert got["lives"][0]["deleted"] is True
    flat = [(uid, kind_rv) for uid, versions in want for kind_rv in versions]
    assert [(v["uid"], (v["event_type"], v["resource_version"])) for v in got["versions"]] == flat
    seqs = [v["seq"] for v in got["versions"]]
    assert seqs == sorted(seqs)
    for version in got["versions"]:
        assert set(version) >= {"seq", "time", "event_type", "resource_version", "changes"}
        assert all(change["path"] != "metadata.resourceVersion" for change in version["changes"])


def test_text_shows_unified_diffs_of_the_rendered_manifest(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """Between consecutive versions the manifest's YAML is diffed: its resourceVersion line moves."""
    (cluster, kind, namespace, name), events = recreated(recorded)
    code, out, err = cli(
        capsys,
        "history",
        recorded.directory,
        f"{kind}/{name}",
        "-n",
        namespace,
        "--cluster",
        cluster,
    )
    assert code == 0, err
    assert out.count("life ") == len({e.uid for e in events})
    modified = next(e for e in events if e.type == "MODIFIED")
    assert f"+++ resourceVersion {modified.resource_version}" in out
    rv_line = yaml.safe_dump({"resourceVersion": modified.resource_version}).strip()
    assert f"    +  {rv_line}\n" in out  # indented under the version line


def test_uid_selects_one_life(recorded: Recorded, capsys: pytest.CaptureFixture[str]) -> None:
    """--uid gives that uid's versions alone."""
    _identity, events = recreated(recorded)
    uid = events[-1].uid
    code, out, err = cli(capsys, "history", recorded.directory, "--uid", uid, "-o", "json")
    assert code == 0, err
    got = orjson.loads(out)
    assert [life["uid"] for life in got["lives"]] == [uid]
    assert len(got["versions"]) == len(expected_lives([e for e in events if e.uid == uid])[0][1])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("Deployment",), 2, "Error: KIND/NAME: expected one slash"),
        ((), 2, "Error: which object?"),
        (("Deployment/no-such-thing",), 1, "no events of Deployment/no-such-thing"),
    ],
)
def test_bad_or_unknown_objects_are_one_error_line(
    recorded: Recorded,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    """A malformed target or an object never seen is one Error line and a non-zero exit."""
    got, out, err = cli(capsys, "history", recorded.directory, *args)
    assert got == code
    assert out == ""
    assert message in err.splitlines()[0]
