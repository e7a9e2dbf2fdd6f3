"""``@frozen``: immutable slotted value classes, without the start-up cost of ``dataclasses``.

``@dataclass(frozen=True, slots=True)`` compiles six methods from source text for every class
and builds the class twice; for the dozen value classes every command loads (the policy's
vocabulary, the settings, the redaction rules) that is about a millisecond each, on top of
importing ``dataclasses`` and ``inspect``. A class decorated with :func:`frozen` annotates its
fields (their order is the annotations'), names them in ``__slots__`` (in any order) and writes
its ``__init__`` by hand; it gets the rest shared:

* ``__eq__``: equal when of the same class and all fields are equal (else ``NotImplemented``);
* ``__hash__``: the hash of the tuple of fields;
* ``__repr__``: ``Name(field=value, ...)``;
* assigning or deleting a field raises :class:`FrozenInstanceError` (an ``AttributeError``);
* ``__match_args__``, and pickling and copying through ``__getstate__`` / ``__setstate__``;

which is what ``@dataclass(frozen=True, slots=True)`` gives. Methods the class defines itself
are kept. The type checker reads ``@frozen`` as a frozen dataclass transform. Such a class is
not a dataclass: ``dataclasses.fields``, ``replace`` and ``asdict`` do not take it (use
``__match_args__`` for the fields); assigning raises ``dataclasses.FrozenInstanceError``.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from operator import attrgetter
from reprlib import recursive_repr

TYPE_CHECKING = False  # typing stays unimported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from typing_extensions import dataclass_transform

    C = TypeVar("C", bound=Any)


__all__ = ["FrozenInstanceError", "frozen", "set_field"]

set_field = object.__setattr__
"""How a frozen class's ``__init__`` sets each of its fields (its own ``__setattr__`` refuses)."""


def _eq(self: Any, other: object) -> object:
    values = self._frozen_values
    if other.__class__ is self.__class__:
        return values(self) == values(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self._frozen_values(self))


@recursive_repr()  # a value holding itself (in a mapping field) shows as "...", not a crash
def _repr(self: Any) -> str:
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._frozen_names)
    return f"{self.__class__.__qualname__}({fields})"


def _setattr(self: Any, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> list[Any]:
    return list(self._frozen_values(self))


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self._frozen_names, state, strict=True):
        object.__setattr__(self, name, value)


_METHODS = {
    "__eq__": _eq,
    "__hash__": _hash,
    "__repr__": _repr,
    "__setattr__": _setattr,
    "__delattr__": _delattr,
    "__getstate__": _getstate,
    "__setstate__": _setstate,
}


def _frozen(cls: Any) -> Any:
    # The fields, in the order they are annotated (as a dataclass orders them); ``__slots__``
    # must name the same fields, in any order.
    # (Every module here has ``from __future__ import annotations``: the class keeps its
    # annotations as strings in its own ``__annotations__``, unevaluated.)
    names = tuple(cls.__dict__["__annotations__"])  # noqa: RUF063 - inspect is slow to import
    if sorted(names) != sorted(cls.__dict__["__slots__"]):
        raise TypeError(f"{cls.__qualname__}: __slots__ must name the annotated fields")
    # ``__init__`` takes the fields, in their order, by their names: one forgotten, renamed or
    # moved would leave a slot unset or fill it with another field's value.
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    if code is None or code.co_varnames[1 : code.co_argcount] != names:
        raise TypeError(f"{cls.__qualname__}: __init__ must take the fields {names}, in order")
    if "__eq__" in cls.__dict__:
        # Python then sets ``__hash__`` to None in the class: equal values must hash alike.
        raise TypeError(f"{cls.__qualname__}: a frozen value class keeps the shared __eq__")
    getter = attrgetter(*names)
    # Read through the instance, so neither may be a function (it would bind to the instance).
    cls._frozen_values = getter if len(names) > 1 else staticmethod(lambda self: (getter(self),))
    cls._frozen_names = names
    cls.__match_args__ = names  # type: ignore[misc]  # mypy forbids it on any class
    for name, method in _METHODS.items():
        if name not in cls.__dict__:
            setattr(cls, name, method)
    return cls


if TYPE_CHECKING:

    @dataclass_transform(frozen_default=True)
    def frozen(cls: C) -> C:
        """Make ``cls`` an immutable value class (see the module)."""

else:
    frozen = _frozen
