"""Log formatting helpers."""

from __future__ import annotations


def test_format_duration_reads_well_and_does_not_wrap_at_a_day():
    from hadna.utils.logging import format_duration

    assert [format_duration(s) for s in (0.4, 59, 59.6, 750, 3599, 3600, 30 * 3600)] == \
        ["0 s", "59 s", "1.0 min", "12.5 min", "1.0 h", "1.0 h", "30.0 h"]  # a 30-hour ETA is not "06:00:00"
    # a bad rate (0 nt/s, a NaN from an empty record) or a clock step must not break a log line or a table
    assert [format_duration(s) for s in (float("nan"), float("inf"), -0.4, -5.0)] == ["?", "?", "0 s", "0 s"]
