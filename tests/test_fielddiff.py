"""Field-level differences: every changed leaf by its path, additions and removals named."""

from __future__ import annotations

from recorder.fielddiff import FieldChange, field_changes


def test_changed_added_and_removed_leaves_are_named_by_path() -> None:
    """Nested maps give dotted paths, lists give indexes, and each side's absence is an op."""
    old = {"spec": {"replicas": 2, "template": {"containers": [{"image": "a:1"}]}}, "x": 1}
    new = {"spec": {"replicas": 3, "template": {"containers": [{"image": "a:2"}, {"image": "b"}]}}}
    assert field_changes(old, new) == [
        FieldChange("spec.replicas", "changed", 2, 3),
        FieldChange("spec.template.containers[0].image", "changed", "a:1", "a:2"),
        FieldChange("spec.template.containers[1]", "added", new={"image": "b"}),
        FieldChange("x", "removed", old=1),
    ]


def test_ignored_paths_and_equal_documents_give_nothing() -> None:
    """An ignored path never shows, and equal documents have no changes."""
    old = {"metadata": {"resourceVersion": "1", "name": "a"}}
    new = {"metadata": {"resourceVersion": "2", "name": "a"}}
    assert field_changes(old, new, frozenset({"metadata.resourceVersion"})) == []
    assert field_changes(new, new) == []


def test_a_type_change_is_a_change_even_when_values_compare_equal() -> None:
    """1 and 1.0 or True compare equal in Python but are different JSON."""
    assert field_changes({"a": 1}, {"a": True}) == [FieldChange("a", "changed", 1, True)]


def test_json_form_leaves_out_the_absent_side() -> None:
    assert FieldChange("a", "added", new=1).as_json() == {"path": "a", "op": "added", "new": 1}
    assert FieldChange("a", "removed", old=1).as_json() == {"path": "a", "op": "removed", "old": 1}
