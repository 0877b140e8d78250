"""The edge's usage spool: every usage record is on disk before it is in a batch, until auth has it.

Records are appended to the current segment file as they settle (one
length-prefixed protobuf each, written straight to the OS, so a killed
process loses nothing the kernel has). The usage flusher closes the segment,
sends its records and deletes the file once auth accepted all of them; a
segment left behind by a crash is read back on start and sent again. The
ledger is idempotent per request id, so a record sent twice is counted once.

One edge process owns a spool folder at a time (an exclusive lock). This
survives the process being killed, not the machine losing power (no fsync on
the request path). A write is a few hundred bytes into the page cache, far
below the cost of the request that produced it.
"""

import fcntl
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError

from switchboard.auth.v1 import auth_pb2

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
_PREFIX = "usage-"
_SUFFIX = ".spool"


class SpoolBusy(RuntimeError):
    """Another edge process holds this spool folder."""


@dataclass
class Segment:
    """A closed segment file (None when the edge runs without a spool) and its records, waiting for auth."""

    path: Path | None
    records: list[auth_pb2.UsageRecord] = field(default_factory=list)


def read_segment(path: Path) -> list[auth_pb2.UsageRecord]:
    """Every whole record in a segment; a torn last record (the process died mid-write) is left out."""
    data = path.read_bytes()
    records: list[auth_pb2.UsageRecord] = []
    offset = 0
    while offset + _LENGTH.size <= len(data):
        (size,) = _LENGTH.unpack_from(data, offset)
        start = offset + _LENGTH.size
        if start + size > len(data):
            break
        record = auth_pb2.UsageRecord()
        try:
            record.ParseFromString(data[start:start + size])
        except DecodeError:
            log.warning("usage spool %s: unreadable record at byte %d; the rest is skipped", path.name, offset)
            break
        records.append(record)
        offset = start + size
    return records


class UsageSpool:
    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._lock_fd = -1
        self._fd = -1
        self._path: Path | None = None
        self._written = 0
        self._sequence = 0

    def open(self) -> list[Segment]:
        """Locks the folder and returns the segments a previous process left behind, oldest first."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolBusy(f"usage spool {self.folder} is in use by another edge process; "
                            "give each edge its own SWITCHBOARD_EDGE_SPOOL_DIR") from None
        left = sorted(self.folder.glob(f"{_PREFIX}*{_SUFFIX}"), key=_sequence_of)
        self._sequence = max((_sequence_of(path) for path in left), default=0)
        segments = [Segment(path, read_segment(path)) for path in left]
        for path, segment in zip(left, segments, strict=True):
            if not segment.records:
                path.unlink(missing_ok=True)
        return [segment for segment in segments if segment.records]

    def append(self, record: auth_pb2.UsageRecord) -> None:
        if self._fd < 0:
            self._sequence += 1
            self._path = self.folder / f"{_PREFIX}{self._sequence:012d}{_SUFFIX}"
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        payload = record.SerializeToString()
        os.write(self._fd, _LENGTH.pack(len(payload)) + payload)
        self._written += 1

    def seal(self) -> Path | None:
        """Closes the current segment (the next record starts a new one); its path, or None if empty."""
        if self._fd < 0:
            return None
        os.close(self._fd)
        path, self._path, self._fd, self._written = self._path, None, -1, 0
        return path

    def close(self) -> None:
        self.seal()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def _sequence_of(path: Path) -> int:
    try:
        return int(path.name[len(_PREFIX):-len(_SUFFIX)])
    except ValueError:
        return 0
