"""The metric CSV logs: columns added by a newer hadna on resume are kept, not dropped."""

from __future__ import annotations

import csv

from hadna.train.metrics_log import CsvLog


def read(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_a_resumed_log_with_a_new_column_extends_the_header(tmp_path):
    path = tmp_path / "val_metrics.csv"
    first = CsvLog(path)
    first.write({"step": 0, "val_loss": 8.5})
    first.write({"step": 10, "val_loss": 8.25})
    first.close()
    resumed = CsvLog(path)  # a newer version logs one more metric
    resumed.write({"step": 20, "val_loss": 8.0, "freq_baseline_loss": 8.125})
    resumed.write({"step": 30, "val_loss": 7.5, "freq_baseline_loss": 8.125})
    resumed.close()
    assert read(path) == [["step", "val_loss", "freq_baseline_loss"], ["0", "8.5", ""], ["10", "8.25", ""],
                          ["20", "8", "8.125"], ["30", "7.5", "8.125"]]
    again = CsvLog(path)
    again.truncate_after(20)
    again.write({"step": 30, "val_loss": 7.0})  # a missing column is an empty cell
    again.close()
    assert read(path)[-2:] == [["20", "8", "8.125"], ["30", "7", ""]]
