"""The base of the values made for every link and URL checked: candidates (extract), canonical
URLs (urls) and verdicts (verdict). What NamedTuple and frozen dataclasses give, as a class
mypyc compiles (setup.py): one is made in ~75 ns from compiled code, where a NamedTuple takes
~320 ns (its __new__ is Python) and a frozen dataclass ~775 ns."""

from __future__ import annotations

from typing import Any, ClassVar, Self


class Record:
    """A value: immutable, compared, hashed, printed and pickled by its `_fields`; `_replace`
    makes a copy with some fields changed. mypyc makes its Final attributes read-only at run
    time; plain Python does it by hand (_set_once)."""

    _fields: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and isinstance(other, Record) and \
            self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[object, ...]:
        return type(self), self._values()

    def _replace(self, **changes: Any) -> Self:
        values = dict(zip(self._fields, self._values(), strict=True))
        values.update(changes)
        cls: Any = type(self)
        return cls(**values)  # type: ignore[no-any-return]


def _set_once(self: Record, name: str, value: object) -> None:
    if hasattr(self, name):
        raise AttributeError(f"attribute {name!r} of {type(self).__name__!r} objects is not writable")
    object.__setattr__(self, name, value)


if not hasattr(Record, "__mypyc_attrs__"):  # plain Python (LINKGUARD_PURE=1): read-only by hand
    setattr(Record, "__setattr__", _set_once)  # noqa: B010 (a native class's namespace is fixed)
