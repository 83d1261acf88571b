"""Metric logs that survive a kill: CSV rows flushed on every write, optional TensorBoard.

On resume from step ``s`` the rows with ``step > s`` (written by the killed run after its last
checkpoint) are dropped, so the log of a resumed run equals the log of an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from ..utils.io import atomic_write_text
from ..utils.logging import get_logger

log = get_logger("train.metrics")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.9g}"
    return str(value)


class CsvLog:
    """Append-only CSV whose header is taken from the first row written, or from the existing file.

    A row with a column the header lacks (a run resumed by a newer hadna that logs one more metric) extends
    the header: the file is rewritten once, atomically, with the new column appended and empty cells in the
    earlier rows, so nothing is dropped.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.columns: list[str] | None = None
        self._fh = None

    def truncate_after(self, step: int) -> None:
        """Drop rows with ``step`` greater than ``step`` (atomic rewrite)."""
        if not self.path.is_file():
            return
        with open(self.path, newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            return
        header, body = rows[0], rows[1:]
        kept = [r for r in body if r and r[0].isdigit() and int(r[0]) <= step]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(kept)
        atomic_write_text(self.path, buf.getvalue())
        if len(kept) != len(body):
            log.info("%s: dropped %d row(s) after step %d (logged after the checkpoint)", self.path.name,
                     len(body) - len(kept), step)

    def write(self, row: dict[str, Any]) -> None:
        if self._fh is None:
            self._open(list(row))
        assert self.columns is not None and self._fh is not None
        extra = [k for k in row if k not in self.columns]
        if extra:
            self._extend_header(extra)
        self._fh.write(",".join(_fmt(row.get(c)) for c in self.columns) + "\n")
        self._fh.flush()  # a SIGKILL loses nothing already written

    def _extend_header(self, extra: list[str]) -> None:
        assert self.columns is not None and self._fh is not None
        self._fh.close()
        with open(self.path, newline="") as fh:
            rows = list(csv.reader(fh))
        self.columns = self.columns + extra
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(r + [""] * len(extra) for r in rows[1:])
        atomic_write_text(self.path, buf.getvalue())
        self._fh = open(self.path, "a", newline="")
        log.info("%s: added column(s) %s to the header (empty in earlier rows)", self.path.name, ", ".join(extra))

    def _open(self, columns: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing = None
        if self.path.is_file() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as fh:
                existing = next(csv.reader(fh), None)
        self.columns = existing or columns
        self._fh = open(self.path, "a", newline="")
        if not existing:
            self._fh.write(",".join(self.columns) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


class TensorBoardLog:
    """Scalars to TensorBoard when ``tensorboard`` is installed; otherwise a one-time warning and nothing."""

    def __init__(self, log_dir: str | Path, enabled: bool):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning("train.tensorboard is true but tensorboard is not installed (pip install tensorboard); "
                        "metrics go to the CSV files only")
            return
        self.writer = SummaryWriter(str(log_dir))

    def write(self, prefix: str, step: int, values: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if isinstance(v, (int, float)) and k != "step":
                self.writer.add_scalar(f"{prefix}/{k}", v, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
