"""The CLI's JSON encoder: the same JSON value as the standard library's, whatever the data."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from airlock.cli._common import json_encoder

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # lone surrogates included
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(_VALUES)
def test_the_same_value_as_the_standard_library(value: Any) -> None:
    """Every value JSON can hold comes out on one line, as the standard library reads it back,
    and equal to the standard library's own encoding of it (what orjson refuses, such as lone
    surrogates and integers beyond 64 bits, is left to the standard library)."""
    text = json_encoder()(value)
    assert "\n" not in text
    expected = json.loads(json.dumps(value, ensure_ascii=False))
    assert json.loads(text) == expected


def test_refused_values_fall_back() -> None:
    """A file name that is not UTF-8 (lone surrogates) and a huge integer still encode."""
    encode = json_encoder()
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert json.loads(encode({"path": name, "size": 2**70})) == {"path": name, "size": 2**70}
    assert encode({1: "a"}) == '{"1": "a"}'
