"""common.records.frozen_record: a frozen dataclass with a cheap constructor."""
from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from common.records import frozen_record


@frozen_record
class Point:
    x: int
    y: int = 0
    label: str = "p"


def test_a_record_keeps_what_a_frozen_dataclass_gives():
    """Fields positional or by name with their defaults, equality, hash, repr, replace."""
    p = Point(1, label="a")
    assert (p.x, p.y, p.label) == (1, 0, "a")
    assert p == Point(x=1, y=0, label="a") and hash(p) == hash(Point(1, 0, "a"))
    assert p != Point(2)
    assert repr(p) == "Point(x=1, y=0, label='a')"
    assert dataclasses.replace(p, y=5) == Point(1, 5, "a")
    assert dataclasses.is_dataclass(p) and dataclasses.astuple(p) == (1, 0, "a")


def test_a_record_cannot_be_changed_or_given_new_attributes():
    """Frozen after __init__: assignment, deletion and new attributes all fail."""
    p = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.y  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        p.z = 3  # type: ignore[attr-defined]
    assert p == Point(1)


def test_a_record_is_built_with_the_arguments_a_dataclass_checks():
    """A missing or unknown argument is the same TypeError a dataclass raises."""
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, z=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, 2, "a", 4)  # type: ignore[call-arg]


def test_a_record_survives_pickle_and_copy():
    """Slots and frozen together still pickle and copy (the outbox's records cross threads)."""
    p = Point(3, 4, "c")
    assert pickle.loads(pickle.dumps(p)) == p
    assert copy.deepcopy(p) == p and copy.copy(p) == p


def test_fields_a_fast_constructor_cannot_honour_are_refused_at_class_creation():
    """default_factory, keyword-only fields, __post_init__ and inherited fields are refused
    when the class is made, not silently built wrong."""
    with pytest.raises(TypeError, match="plain fields"):
        @frozen_record
        class Factory:
            items: list = dataclasses.field(default_factory=list)
    with pytest.raises(TypeError, match="plain fields"):
        @frozen_record
        class KwOnly:
            a: int = dataclasses.field(kw_only=True, default=0)
    with pytest.raises(TypeError, match="__post_init__"):
        @frozen_record
        class Post:
            a: int

            def __post_init__(self):
                pass
    with pytest.raises(TypeError, match="inherit"):
        @frozen_record
        class Child(Point):
            z: int = 0
