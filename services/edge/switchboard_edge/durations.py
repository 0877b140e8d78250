"""Protobuf durations to and from seconds, on every request several times: the fields directly, as protobuf's
FromNanoseconds and ToTimedelta are Python code with checks and a timedelta in between."""

from google.protobuf.duration_pb2 import Duration


def duration(seconds: float) -> Duration:
    """A duration of `seconds` (not negative)."""
    whole, nanos = divmod(int(seconds * 1e9), 1_000_000_000)
    return Duration(seconds=whole, nanos=nanos)


def seconds_of(value: Duration) -> float:
    """The duration in seconds; zero when unset."""
    return value.seconds + value.nanos / 1e9
