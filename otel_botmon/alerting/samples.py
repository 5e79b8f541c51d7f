"""Labels and samples: the values conditions produce and alert instances are made of."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

__all__ = ["EMPTY_LABELS", "Labels", "Sample"]


class Labels(Mapping[str, str]):
    """An immutable, hashable mapping of label names to string values."""

    __slots__ = ("_hash", "_items", "_map")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        mapping = {str(k): str(v) for k, v in pairs}
        self._map = mapping
        self._items = tuple(sorted(mapping.items()))
        self._hash = hash(self._items)

    @classmethod
    def of(cls, labels: Mapping[str, str]) -> Labels:
        """``labels`` itself when it already is a ``Labels``, else a converted copy."""
        return labels if isinstance(labels, Labels) else cls(labels)

    def __getitem__(self, key: str) -> str:
        return self._map[key]

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._map) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._items)
        return "{" + inner + "}"

    def without(self, names: Iterable[str]) -> Labels:
        drop = set(names)
        return Labels((k, v) for k, v in self._items if k not in drop)

    def only(self, names: Iterable[str]) -> Labels:
        keep = set(names)
        return Labels((k, v) for k, v in self._items if k in keep)


EMPTY_LABELS = Labels()


@dataclass(frozen=True)
class Sample:
    """One series' value: its labels (the data point's attributes) and a float."""

    labels: Labels
    value: float

    def __post_init__(self) -> None:
        # callers may pass any mapping; keep a hashable Labels so samples can be keys
        labels: Mapping[str, str] = self.labels
        if not isinstance(labels, Labels):
            object.__setattr__(self, "labels", Labels(labels))
