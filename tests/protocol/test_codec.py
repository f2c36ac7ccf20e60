"""The value codec against every case of the wire spec's value table, traps included."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import math
import uuid
from pathlib import Path

import pytest
from google.protobuf import struct_pb2

from jumpstarter_jupyter.protocol.codec import EncodeError, decode, encode


def roundtrip(value):
    return decode(struct_pb2.Value.FromString(encode(value).SerializeToString()))


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        (True, True),
        (False, False),
        (1, 1.0),
        (0, 0.0),
        (-7, -7.0),
        (2**53, 9007199254740992.0),
        (1.5, 1.5),
        (1.0000000000000002, 1.0000000000000002),
        ("hé", "hé"),
        (b"hi", "hi"),
        ([1, "a", None], [1.0, "a", None]),
        ((1, 2), [1.0, 2.0]),
        ({"a": 1, "b": [True]}, {"a": 1.0, "b": [True]}),
        ({1: 2}, {"1": 2.0}),
        ({}, {}),
        ([], []),
        ([[]], [[]]),
    ],
)
def test_values_travel_as_upstream_encodes_them(value, expected):
    result = roundtrip(value)
    assert result == expected
    assert type(result) is type(expected)


def test_ints_come_back_as_floats_and_lose_precision_past_2_to_53():
    assert roundtrip(2**63) == float(2**63)
    assert isinstance(roundtrip(3), float)


def test_exact_encodings_match_the_spec_hex():
    assert encode(None).SerializeToString().hex() == "0800"
    assert encode(True).SerializeToString().hex() == "2001"
    assert encode(1).SerializeToString().hex() == "11000000000000f03f"
    assert encode("hé").SerializeToString().hex() == "1a0368c3a9"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), [1.0, float("nan")]])
def test_nan_and_infinity_are_refused_at_the_caller(value):
    with pytest.raises(EncodeError, match="NaN or infinity"):
        encode(value)


def test_non_utf8_bytes_are_refused_with_the_position():
    with pytest.raises(EncodeError, match="not UTF-8.*byte 1"):
        encode(b"a\xff")


def test_decoding_a_nan_number_is_refused():
    with pytest.raises(ValueError, match="NaN or infinity"):
        decode(struct_pb2.Value(number_value=math.nan))


def test_unset_value_decodes_to_none():
    assert decode(struct_pb2.Value()) is None


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Reading:
    voltage: float
    label: str | None = None


@pytest.mark.parametrize(
    "value, expected",
    [
        (Color.RED, "red"),
        (Level.HIGH, 3.0),
        (Reading(5, None), {"voltage": 5.0, "label": None}),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (datetime.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (datetime.date(2024, 5, 6), "2024-05-06"),
        (datetime.timedelta(seconds=90), "PT1M30S"),
        (decimal.Decimal("1.10"), "1.10"),
        (Path("/x/y"), "/x/y"),
        ({1, 2}, [1.0, 2.0]),
    ],
)
def test_rich_python_values_become_plain_json_data(value, expected):
    result = roundtrip(value)
    assert sorted(result) == sorted(expected) if isinstance(value, set) else result == expected


def test_unknown_objects_are_refused_by_type_name():
    with pytest.raises(EncodeError, match="a object cannot travel"):
        encode(object())
