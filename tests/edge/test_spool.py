"""The usage spool: what a killed edge left behind is read back, torn tails are skipped, one owner per folder."""

import os
from pathlib import Path

import pytest

from switchboard.auth.v1 import auth_pb2
from switchboard_edge.spool import SpoolBusy, UsageSpool, read_segment


def _record(request_id: str) -> auth_pb2.UsageRecord:
    return auth_pb2.UsageRecord(request_id=request_id, usage=auth_pb2.TokenUsage(input_tokens=7, output_tokens=3))


def test_records_left_by_a_dead_process_are_returned_on_open(tmp_path: Path) -> None:
    first = UsageSpool(tmp_path)
    assert first.open() == []
    first.append(_record("a"))
    first.append(_record("b"))
    first.seal()
    first.append(_record("c"))
    # The process dies here: no close, no flush. (Closing the lock fd stands in for the process ending.)
    os.close(first._lock_fd)
    second = UsageSpool(tmp_path)
    segments = second.open()
    assert [[r.request_id for r in segment.records] for segment in segments] == [["a", "b"], ["c"]]
    assert segments[0].records[0].usage.input_tokens == 7
    # New records go to a new segment, after the old ones.
    second.append(_record("d"))
    path = second.seal()
    assert path is not None and all(path.name > segment.path.name for segment in segments if segment.path)


def test_a_torn_last_record_is_left_out(tmp_path: Path) -> None:
    spool = UsageSpool(tmp_path)
    spool.open()
    spool.append(_record("whole"))
    spool.append(_record("torn"))
    path = spool.seal()
    assert path is not None
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    assert [record.request_id for record in read_segment(path)] == ["whole"]


def test_one_edge_per_spool_folder(tmp_path: Path) -> None:
    owner = UsageSpool(tmp_path)
    owner.open()
    with pytest.raises(SpoolBusy, match="SWITCHBOARD_EDGE_SPOOL_DIR"):
        UsageSpool(tmp_path).open()
    owner.close()
    UsageSpool(tmp_path).open()
