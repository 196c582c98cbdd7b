"""Column kinds of Arrow types: the expectation family and the profile kind come from one reading."""

from __future__ import annotations

import pyarrow as pa
import pytest

from modelyard.data._kinds import column_kind, type_family

CASES = [
    (pa.int8(), "integer", "numeric"),
    (pa.uint64(), "integer", "numeric"),
    (pa.float32(), "float", "numeric"),
    (pa.float16(), "float", "numeric"),
    (pa.decimal128(10, 2), "float", "numeric"),
    (pa.string(), "string", "categorical"),
    (pa.large_string(), "string", "categorical"),
    (pa.dictionary(pa.int32(), pa.string()), "string", "categorical"),
    (pa.dictionary(pa.int8(), pa.int64()), "string", "categorical"),
    (pa.bool_(), "boolean", "boolean"),
    (pa.timestamp("ns", tz="UTC"), "datetime", "datetime"),
    (pa.date32(), "datetime", "datetime"),
    (pa.duration("s"), "other", "other"),
    (pa.binary(), "other", "other"),
    (pa.list_(pa.int64()), "other", "other"),
    (pa.null(), "other", "other"),
]


@pytest.mark.parametrize(("arrow_type", "family", "kind"), CASES, ids=[str(c[0]) for c in CASES])
def test_family_and_kind_of_each_arrow_type(arrow_type: pa.DataType, family: str, kind: str) -> None:
    assert type_family(arrow_type) == family
    assert column_kind(arrow_type) == kind
    if family != "other":  # a profile stores the type's name: it reads the same
        assert type_family(str(arrow_type)) == family


def test_the_data_package_reexports_the_one_reader() -> None:
    from modelyard.data import _expectations, _profile

    assert _profile.column_kind is column_kind and _expectations.type_family is type_family
