"""BED text to numpy arrays and back without pandas: the ``crossglue liftover`` command's I/O.

A BED file is read as bytes and split with numpy (line and tab offsets, integers parsed digit
column by digit column); records are never turned into Python strings. Output lines are
assembled from *segments* (bytes copied from the input or a small table, decimal integers)
straight into one byte buffer, a chunk of rows at a time so memory stays bounded. A lifted
record is its input line with new chrom, start and end: everything after column 3 is copied
as bytes, so columns the lift does not touch come out exactly as they went in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossglue.errors import CrossglueError, where
from crossglue.io_utils import read_maybe_gzip

_POW10 = 10 ** np.arange(19, dtype=np.int64)
_CHUNK = 1 << 16  # output rows assembled at once


@dataclass
class BedLines:
    """The data lines of a BED file: byte offsets of lines and tabs, chrom, start, end parsed."""

    path: Path
    buf: np.ndarray  # the file as uint8
    line_no: np.ndarray  # 1-based line number of each record
    line_start: np.ndarray  # byte offset of each record's first byte
    line_end: np.ndarray  # byte offset just past its last byte (newline and '\r' excluded)
    n_col: int
    tabs: np.ndarray  # byte offsets of every tab of the file
    first_tab: np.ndarray  # index into ``tabs`` of each record's first tab
    chrom_names: list[str]  # distinct chromosome names
    chrom: np.ndarray  # index into chrom_names per record
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.line_start)

    def tab(self, k: int) -> np.ndarray:
        """Byte offset of each record's k-th tab (0-based); the line end past the last one."""
        if k >= self.n_col - 1:
            return self.line_end
        return self.tabs[self.first_tab + k].astype(np.int64)

    def field(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Byte range [lo, hi) of column k (0-based) of every record."""
        lo = self.line_start if k == 0 else self.tab(k - 1) + 1
        return lo, self.tab(k)

    def column_text(self, k: int) -> np.ndarray:
        """Column k as Python strings (for callers that want a table; not the command's path)."""
        lo, hi = self.field(k)
        length = hi - lo
        width = int(length.max(initial=0))
        if not width:
            return np.full(len(lo), "", dtype=object)
        pos = lo[:, None] + np.arange(width)
        chars = np.where(np.arange(width) < length[:, None], self.buf[np.minimum(pos, len(self.buf) - 1)], 0)
        return chars.astype(np.uint8).view(f"S{width}").ravel().astype(str).astype(object)


def _line_starts_with(buf: np.ndarray, starts: np.ndarray, prefix: bytes) -> np.ndarray:
    """Which lines (given by their first byte offsets) begin with ``prefix``."""
    pos = starts[:, None] + np.arange(len(prefix))
    inside = pos < len(buf)
    got = np.where(inside, buf[np.minimum(pos, len(buf) - 1)], 0)
    return (got == np.frombuffer(prefix, dtype=np.uint8)).all(axis=1)


def _record_spans(raw: bytes, buf: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Records among the lines of ``buf[lo:hi]`` (not '#', track, browser or blank).

    Returns their 1-based line numbers inside the piece, start and end offsets in ``buf``,
    and the number of lines of the piece.
    """
    newline = np.flatnonzero(buf[lo:hi] == 10) + lo
    starts = np.concatenate(([lo], newline + 1))
    ends = np.concatenate((newline, [hi]))
    inside = starts < hi
    starts, ends = starts[inside], ends[inside]
    first = buf[np.minimum(starts, max(len(buf) - 1, 0))]
    skip = (first == ord("#")) | (first == 10) | (first == 13)
    for letter, word in ((ord("t"), b"track"), (ord("b"), b"browser")):
        maybe = np.flatnonzero(first == letter)
        skip[maybe[_line_starts_with(buf, starts[maybe], word)]] = True
    for k in np.flatnonzero((first == 32) | (first == 9)):  # rare: leading blanks
        text = raw[starts[k] : ends[k]].strip()
        skip[k] = not text or text.startswith((b"#", b"track", b"browser"))
    keep = np.flatnonzero(~skip)
    starts, ends = starts[keep], ends[keep]
    if len(ends):
        ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13))  # CRLF files
    return keep + 1, starts.astype(np.int64), ends.astype(np.int64), len(inside)


_ZEROS = np.uint64(0x3030303030303030)  # eight ASCII '0'
_HIGH = np.uint64(0x8080808080808080)


def _eight_digits(buf: np.ndarray, pos: np.ndarray, nbytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value of the ``nbytes`` (0-8) decimal digits at ``pos``, and whether all of them are digits.

    SWAR: the digits are loaded as one word, left-padded with '0' and combined pairwise in
    three multiply-shift steps (simdjson's parse_eight_digits_unrolled).
    """
    pad = ((8 - np.clip(nbytes, 0, 8)) * 8).astype(np.uint64)
    word = _words(buf, pos, nbytes) << pad  # first digit lands in byte 8 - nbytes
    word |= _ZEROS & ~(np.uint64(2**64 - 1) << pad)  # padding bytes read as '0'
    below = (word - _ZEROS) & ~word & _HIGH  # a byte < '0' (exact for thresholds <= 0x80)
    above = ((word + np.uint64(0x4646464646464646)) | word) & _HIGH  # a byte > '9'
    digits = word - _ZEROS
    digits = ((digits & np.uint64(0x0F0F0F0F0F0F0F0F)) * np.uint64(2561)) >> np.uint64(8)
    digits = ((digits & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601)) >> np.uint64(16)
    digits = ((digits & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)
    return digits.astype(np.int64), (below | above) == 0


def _integers(bed: BedLines, k: int, name: str) -> np.ndarray:
    """Column k as non-negative int64 (at most 16 digits), eight digits per step."""
    lo, hi = bed.field(k)
    length = hi - lo
    head = np.clip(length - 8, 0, 8)  # digits before the last eight
    low, ok = _eight_digits(bed.buf, lo + head, np.minimum(length, 8))
    ok &= (length >= 1) & (length <= 16)
    if head.any():
        high, ok_high = _eight_digits(bed.buf, lo, head)
        low += high * 100_000_000
        ok &= ok_high
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        text = bytes(bed.buf[lo[i] : hi[i]]).decode("utf-8", "replace")
        at = where(bed.path, int(bed.line_no[i]))
        raise CrossglueError(f"{at}: expected a non-negative integer {name}, got {text!r}")
    return low


_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # low k bytes


def _words(buf: np.ndarray, pos: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
    """The bytes ``buf[pos : pos + min(nbytes, 8)]`` of each position as one little-endian uint64."""
    if len(buf) < 8:
        buf = np.concatenate((buf, np.zeros(8, np.uint8)))
    words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))  # unaligned view, no copy
    mask = _MASKS[np.clip(nbytes, 0, 8)]
    if not len(pos) or int(pos.max()) <= len(buf) - 8:
        return words[pos] & mask
    at = np.minimum(pos, len(buf) - 8)
    return (words[at] >> ((pos - at) * 8).astype(np.uint64)) & mask  # past the end: shift the tail down


def _chromosomes(bed: BedLines) -> tuple[list[str], np.ndarray]:
    """Distinct names of column 1 and each record's index into them.

    Each name is read as 8-byte words; records are grouped by a hash of their words and
    length, then every record's words are compared with its group's first record, so two
    names are never merged by a hash collision.
    """
    lo, hi = bed.field(0)
    n = len(lo)
    if not n:
        return [], np.zeros(0, np.int64)
    length = hi - lo
    n_words = (int(length.max()) + 7) // 8
    words = [_words(bed.buf, lo + 8 * k, length - 8 * k) for k in range(n_words)]
    key = length.astype(np.uint64)
    with np.errstate(over="ignore"):
        for word in words:
            key = (key ^ word) * np.uint64(0x9E3779B97F4A7C15)
            key ^= key >> np.uint64(29)
    order = np.argsort(key, kind="stable")  # np.unique would import numpy.ma (tens of ms)
    new = np.concatenate(([True], key[order][1:] != key[order][:-1]))
    first = order[new]
    code = np.empty(n, np.int64)
    code[order] = np.cumsum(new) - 1
    rep = first[code]
    same = length == length[rep]
    for word in words:
        same &= word == word[rep]
    if not same.all():
        i = int(np.flatnonzero(~same)[0])
        raise CrossglueError(f"{where(bed.path, int(bed.line_no[i]))}: chromosome name hash collision; please report")
    names = [bytes(bed.buf[lo[i] : hi[i]]).decode("utf-8", "replace") for i in first.tolist()]
    return names, code


_CHUNK_BYTES = 1 << 18  # bytes of records parsed, lifted and written at once: cache-sized, bounded memory


def iter_bed_chunks(path: str | Path, chunk_bytes: int = _CHUNK_BYTES) -> Iterator[BedLines]:
    """A BED3+ file's records in pieces of about ``chunk_bytes``, skipping '#', 'track',
    'browser' and blank lines; gzip or plain.

    Checks: at least three tab-separated columns, the same number on every line, start and
    end non-negative integers, start <= end. Errors name the file and line.
    """
    path = Path(path)
    try:
        raw = read_maybe_gzip(path)
    except (OSError, EOFError) as exc:
        raise CrossglueError(f"{path}: cannot read BED file ({exc})") from None
    buf = np.frombuffer(raw, dtype=np.uint8)
    n_col, lines_before, lo = None, 0, 0
    while lo < len(buf):
        hi = len(buf) if lo + chunk_bytes >= len(buf) else raw.find(b"\n", lo + chunk_bytes - 1) + 1 or len(buf)
        line_no, starts, ends, n_lines = _record_spans(raw, buf, lo, hi)
        line_no += lines_before
        lines_before += n_lines
        lo = hi
        if not len(starts):
            continue
        tabs = np.flatnonzero(buf[starts[0] : ends[-1]] == 9) + starts[0]
        first_tab = np.searchsorted(tabs, starts)
        n_tab = np.searchsorted(tabs, ends) - first_tab
        if n_col is None:
            n_col = int(n_tab[0]) + 1
            if n_col < 3:
                at = where(path, int(line_no[0]))
                raise CrossglueError(f"{at}: expected at least 3 tab-separated columns (chrom, start, end)")
        ragged = np.flatnonzero(n_tab != n_col - 1)
        if len(ragged):
            at = where(path, int(line_no[ragged[0]]))
            raise CrossglueError(f"{at}: expected the same number of tab-separated BED columns on every line")
        empty = np.zeros(0, np.int64)
        bed = BedLines(path, buf, line_no, starts, ends, n_col, tabs, first_tab, [], empty, empty, empty)
        bed.start = _integers(bed, 1, "start")
        bed.end = _integers(bed, 2, "end")
        after = np.flatnonzero(bed.start > bed.end)
        if len(after):
            raise CrossglueError(f"{where(path, int(line_no[after[0]]))}: start is after end")
        bed.chrom_names, bed.chrom = _chromosomes(bed)
        yield bed


def read_bed_lines(path: str | Path) -> BedLines | None:
    """All records of a BED3+ file at once (:func:`iter_bed_chunks`' checks); None if it has none."""
    return next(iter_bed_chunks(path, chunk_bytes=2**62), None)


# --- writing ---------------------------------------------------------------------------------


@dataclass
class Copy:
    """Bytes ``source[offset : offset + length]`` per row."""

    source: np.ndarray
    offset: np.ndarray
    length: np.ndarray


@dataclass
class Const:
    """The same bytes on every row."""

    text: bytes


@dataclass
class Int:
    """A non-negative integer per row, in decimal."""

    value: np.ndarray


Segment = Copy | Const | Int


def text_table(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A few strings as one byte array with offsets and lengths, for :class:`Copy` segments."""
    encoded = [s.encode() for s in strings]
    length = np.array([len(b) for b in encoded], dtype=np.int64)
    offset = np.concatenate(([0], np.cumsum(length)[:-1])).astype(np.int64) if len(encoded) else length
    return np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8), offset, length


def _lengths(segment: Segment, n: int) -> np.ndarray:
    if isinstance(segment, Copy):
        return segment.length
    if isinstance(segment, Const):
        return np.full(n, len(segment.text), np.int64)
    return np.maximum(np.searchsorted(_POW10, segment.value, side="right"), 1)


def _piece(segment: Segment, lo: int, hi: int) -> Segment:
    if isinstance(segment, Copy):
        return Copy(segment.source, segment.offset[lo:hi], segment.length[lo:hi])
    if isinstance(segment, Int):
        return Int(segment.value[lo:hi])
    return segment


def _assemble(segments: list[Segment], n: int) -> np.ndarray:
    """Rows of ``n`` records, each the concatenation of its segments, as one byte array."""
    lengths = [_lengths(s, n) for s in segments]
    row_len = np.sum(lengths, axis=0) if lengths else np.zeros(n, np.int64)
    out = np.empty(int(row_len.sum()), np.uint8)
    dst = np.cumsum(row_len) - row_len
    for segment, length in zip(segments, lengths, strict=True):
        if isinstance(segment, Const):
            for j, byte in enumerate(segment.text):
                out[dst + j] = byte
        elif isinstance(segment, Int) and len(length):
            value, last = segment.value, dst + length - 1
            value = value.astype(np.uint32 if int(value.max()) < 2**32 else np.int64)  # 32-bit divides are faster
            shortest = int(length.min())
            for j in range(int(length.max())):  # digits right to left
                value, digit = np.divmod(value, 10)
                if j < shortest:  # every number has this digit
                    out[last - j] = digit + 48
                else:
                    has = length > j
                    out[(last - j)[has]] = digit[has] + 48
        elif isinstance(segment, Copy):
            total = int(length.sum())
            at = np.repeat(dst - (np.cumsum(length) - length), length) + np.arange(total)
            out[at] = segment.source[at + np.repeat(segment.offset - dst, length)]
        dst = dst + length
    return out


def format_lines(segments: list[Segment], n: int) -> Iterator[np.ndarray]:
    """The text of ``n`` output records, in byte chunks of at most :data:`_CHUNK` records."""
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        yield _assemble([_piece(s, lo, hi) for s in segments], hi - lo)
