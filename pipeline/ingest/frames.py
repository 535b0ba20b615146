"""A file's tables as arrays: what travels from a reader process and what many files' tables
are stacked from; each table's DataFrame is built only where it is looked at.

A province's 3,000 files make 6,000 small tables. As DataFrames, each was pickled in its
reader and rebuilt in the run (0.17 ms per file), then stacked for validation and again for
the totals, pandas comparing every frame's labels each time. As arrays (`FrameParts`) they
cross processes for a quarter of that and stack with one numpy call; `Frames`, a submission's
mapping of sheet id → DataFrame, builds a frame on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ROW = "row"  # the index of a table's frame: the Excel row of each value


@dataclass(frozen=True, eq=False)
class FrameParts:
    """One table's values: `values` (rows × columns, dtype object, nothing converted), the
    column ids, and each row's Excel row (int64)."""

    values: np.ndarray
    columns: tuple[str, ...]
    rows: np.ndarray

    @classmethod
    def of_columns(cls, columns: Sequence[Sequence[Any]], ids: Sequence[str],
                   rows: Sequence[int]) -> FrameParts:
        """The parts of a table given column by column (`columns[j]`: the values of ids[j])."""
        values = np.empty((len(rows), len(ids)), dtype=object)
        for j, column in enumerate(columns):
            values[:, j] = np.fromiter(column, dtype=object, count=len(rows))
        return cls(values, tuple(ids), np.fromiter(rows, dtype=np.int64, count=len(rows)))

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> FrameParts:
        """The parts of a table's frame (columns of Python objects, index = Excel row)."""
        return cls(frame.to_numpy(dtype=object), tuple(frame.columns),
                   np.asarray(frame.index, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self) -> pd.DataFrame:
        """The table as a frame: one column per column id (dtype object), index "row"."""
        return pd.DataFrame(self.values, index=_row_index(self.rows),
                            columns=_labels(self.columns).copy(), dtype=object, copy=False)

    def without_rows(self, rows: set[int]) -> FrameParts:
        """The table without the given Excel rows."""
        kept = ~np.isin(self.rows, np.fromiter(rows, dtype=np.int64, count=len(rows)))
        return FrameParts(self.values[kept], self.columns, self.rows[kept])


def _row_index(rows: np.ndarray) -> pd.Index:
    """A frame's index of Excel rows, named "row" (an empty one as pandas makes it from [])."""
    return pd.Index(rows, name=ROW) if len(rows) else pd.Index([], name=ROW)


@functools.lru_cache(maxsize=256)
def _labels(names: tuple[str, ...]) -> pd.Index:
    """The column labels of a frame, as pandas makes them from a list of names (each frame
    gets its own copy: a label's name may be set)."""
    return pd.Index(list(names))


def stacked(parts: Sequence[FrameParts], *, keep_rows: bool = True) -> pd.DataFrame:
    """The tables one under the other, as pd.concat stacks their frames: index "row" (or a
    fresh 0, 1, … when not `keep_rows`). Tables of the same columns are stacked as arrays;
    others through pandas (a column some lack is empty there)."""
    first = parts[0].columns
    if any(p.columns != first for p in parts):
        return pd.concat([p.frame() for p in parts], ignore_index=not keep_rows)
    values = np.concatenate([p.values for p in parts]) if len(parts) > 1 else parts[0].values
    index = _row_index(np.concatenate([p.rows for p in parts])) if keep_rows else None
    return pd.DataFrame(values, index=index, columns=_labels(first).copy(), dtype=object,
                        copy=False)


class Frames(Mapping[str, pd.DataFrame]):
    """A submission's tables by sheet id, kept as FrameParts (all that is pickled); each
    DataFrame is built on first use and kept."""

    def __init__(self, parts: Mapping[str, FrameParts]) -> None:
        self._parts = dict(parts)
        self._frames: dict[str, pd.DataFrame] = {}

    def __getitem__(self, sheet_id: str) -> pd.DataFrame:
        frame = self._frames.get(sheet_id)
        if frame is None:
            frame = self._frames[sheet_id] = self._parts[sheet_id].frame()
        return frame

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def __contains__(self, sheet_id: object) -> bool:
        return sheet_id in self._parts

    def parts(self, sheet_id: str) -> FrameParts:
        """A table's parts (KeyError for a sheet not read)."""
        return self._parts[sheet_id]

    def __getstate__(self) -> dict[str, FrameParts]:
        return self._parts

    def __setstate__(self, parts: dict[str, FrameParts]) -> None:
        self._parts, self._frames = parts, {}


def frame_parts(frames: Mapping[str, pd.DataFrame], sheet_id: str) -> FrameParts:
    """A table's parts from a submission's frames (a plain mapping of frames too)."""
    if isinstance(frames, Frames):
        return frames.parts(sheet_id)
    return FrameParts.of_frame(frames[sheet_id])
