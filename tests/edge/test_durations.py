"""Durations to and from seconds, as protobuf's own helpers give them."""

from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from hypothesis import given
from hypothesis import strategies as st

from switchboard_edge.durations import duration, seconds_of


@given(st.floats(min_value=0, max_value=10**9, allow_nan=False))
def test_a_duration_has_the_fields_protobufs_own_conversion_gives(seconds: float) -> None:
    expected = Duration()
    expected.FromNanoseconds(int(seconds * 1e9))
    assert duration(seconds) == expected


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=999_999_999))
def test_seconds_of_a_duration_is_protobufs_total_seconds(whole: int, nanos: int) -> None:
    value = Duration(seconds=whole, nanos=nanos)
    assert abs(seconds_of(value) - value.ToTimedelta().total_seconds()) <= 1e-6 * max(1.0, whole)


def test_an_unset_duration_is_zero_seconds() -> None:
    assert seconds_of(Duration()) == 0.0 and duration(0.0) == Duration(seconds=0, nanos=0)
    assert seconds_of(duration(timedelta(minutes=2).total_seconds())) == 120.0
