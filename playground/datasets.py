"""Data for the playground: built-in sets, 2-D generators, CSV upload, splitting.

Built-in sets come from scikit-learn (Digits, Iris, Wine, Breast cancer, moons,
circles, blobs); XOR and the spiral have no scikit-learn generator and are
drawn here. Uploaded CSV files are parsed without ever evaluating or
unpickling anything, and every way a file can be wrong gets its own message
saying what is wrong and how to fix it (:class:`DatasetError`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["DATASET_NAMES", "MAX_CELLS", "MAX_CLASSES", "MAX_COLUMNS", "MAX_FEATURES", "Dataset",
           "DatasetError", "Prepared", "csv_columns", "fit_scaling", "load_builtin", "parse_csv",
           "prepare", "scale_rows", "spiral", "standardize", "xor"]

#: Names accepted by :func:`load_builtin`.
DATASET_NAMES = ("Digits", "Iris", "Wine", "Breast cancer", "Moons", "Circles", "XOR", "Spiral",
                 "Gaussian blobs")
MAX_CLASSES = 50
MAX_FEATURES = 1000
MIN_ROWS = 10
GRID_STEPS = 100  # decision-boundary resolution per axis
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})


class DatasetError(ValueError):
    """The data cannot be used; the message tells the user what to change."""


@dataclass(frozen=True)
class Dataset:
    """A classification data set, before splitting and scaling."""

    name: str
    X: np.ndarray  # (n_samples, n_features) float64
    y: np.ndarray  # (n_samples,) labels (int or str)
    feature_names: tuple[str, ...]
    description: str
    images: np.ndarray | None = None  # (n_samples, h, w) for image data (Digits)
    label_name: str = "class"

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def is_2d(self) -> bool:
        return self.X.shape[1] == 2


# ---- generators -------------------------------------------------------------
def xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Four Gaussian clusters at (+-1, +-1); class = sign(x) != sign(y)."""
    centers = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=float)
    which = rng.integers(0, 4, n)
    X = centers[which] + rng.normal(scale=0.25 + noise, size=(n, 2))
    y = (which >= 2).astype(int)
    return X, y


def spiral(n: int, k: int, noise: float, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray]:
    """``k`` interleaved spiral arms (the classic CS231n toy problem)."""
    y = np.arange(n) % k
    t = rng.uniform(0.0, 1.0, n)  # position along the arm
    r = 0.1 + t  # radius grows along the arm
    angle = 4.0 * t + y * 2 * np.pi / k + rng.normal(scale=noise, size=n)
    X = np.column_stack([r * np.sin(angle), r * np.cos(angle)])
    return X, y


def load_builtin(name: str, n_samples: int = 500, noise: float = 0.2, n_classes: int = 3,
                 seed: int = 0) -> Dataset:
    """Load a built-in or generated data set by its display name."""
    from sklearn import datasets as skd

    rng = np.random.default_rng(seed)
    if name == "Digits":
        d = skd.load_digits()
        return Dataset(name, d.data.astype(float), d.target,
                       tuple(f"pixel {i // 8},{i % 8}" for i in range(64)),
                       "1,797 handwritten digits, 8x8 grey-level images (64 features), "
                       "10 classes.", images=d.images, label_name="digit")
    if name in ("Iris", "Wine", "Breast cancer"):
        loader = {"Iris": skd.load_iris, "Wine": skd.load_wine,
                  "Breast cancer": skd.load_breast_cancer}[name]
        d = loader()
        labels = np.asarray(d.target_names)[d.target]
        text = {"Iris": "150 iris flowers, 4 measurements, 3 species.",
                "Wine": "178 wines, 13 chemical measurements, 3 cultivars.",
                "Breast cancer": "569 tumours, 30 measurements, malignant or benign."}[name]
        return Dataset(name, d.data.astype(float), labels, tuple(d.feature_names), text)
    seed32 = int(rng.integers(2**31 - 1))
    if name == "Moons":
        X, y = skd.make_moons(n_samples, noise=noise, random_state=seed32)
    elif name == "Circles":
        X, y = skd.make_circles(n_samples, noise=noise, factor=0.5, random_state=seed32)
    elif name == "XOR":
        X, y = xor(n_samples, noise, rng)
    elif name == "Spiral":
        X, y = spiral(n_samples, n_classes, noise, rng)
    elif name == "Gaussian blobs":
        X, y = skd.make_blobs(n_samples, centers=n_classes, cluster_std=1.0 + 4 * noise,
                              random_state=seed32)
    else:
        raise DatasetError(f"Unknown data set {name!r}.")
    k = len(np.unique(y))
    return Dataset(name, X.astype(float), y, ("x1", "x2"),
                   f"{n_samples} generated 2-D points, {k} classes, noise {noise:g}.")


# ---- CSV --------------------------------------------------------------------
# An upload is checked in this order, each step refusing as early as it can:
#   1. size, before anything is decoded;
#   2. encoding: UTF-8 with or without BOM, UTF-16/32 with BOM (and UTF-16
#      without one when unmistakable), else Windows-1252; real binary files,
#      control characters and files mixing encodings are refused;
#   3. the header row (the first line): not blank, not too long, not too many
#      columns; the delimiter is guessed from a bounded look at the first lines;
#   4. the body, read by pyarrow's streaming CSV reader (strict quoting, every
#      cell kept as text) one block at a time, stopping as soon as the row or
#      cell limit is passed;
#   5. names, labels and numbers, with vectorised checks (pyarrow's RE2 regular
#      expressions run in linear time whatever the input).
# No step is quadratic in the input, and nothing is evaluated or unpickled.

#: Default limits of :func:`parse_csv` (beyond the caller's bytes and rows).
MAX_COLUMNS = MAX_FEATURES + 1
MAX_CELLS = 5_000_000  # 40 MB as float64
MAX_NAME_CHARS = 200  # a column name
MAX_LABEL_CHARS = 100  # a class label
_HEADER_CHARS = 2**20  # the header row must end within the first MiB
_BLOCK_BYTES = 2**18  # the reader's block (256 KiB); also the longest row it accepts
_SNIFF_LINES = 50  # lines looked at to guess the delimiter ...
_SNIFF_CHARS = 65536  # ... within this many characters
_MAX_SKIPPED = 1000  # lines of only spaces skipped before the file is refused
_DELIMITERS = (",", ";", "\t", "|")  # in order of preference
_DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}

_EMPTY = "The file is empty. Upload a CSV file with a header row and one row per sample."
_BLANK_HEADER = ("The header row (line 1) is blank. The first line must name the columns, "
                 "e.g. 'x1,x2,label': delete the blank line or write the names in it.")
_BINARY = ("This is not a text CSV file (it contains binary data{kind}). Save or export "
           "your table as CSV (comma-separated values) and upload that.")
_SIGNATURES = (  # of files people rename to .csv
    (b"PK\x03\x04", ", e.g. an Excel workbook (.xlsx) or another zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", ", e.g. an Excel 97-2003 workbook (.xls)"),
    (b"\x89PNG", ": a PNG image"), (b"\xff\xd8\xff", ": a JPEG image"),
    (b"GIF8", ": a GIF image"), (b"%PDF", ": a PDF document"),
    (b"\x1f\x8b", ": a gzip archive"), (b"SQLite format 3\x00", ": an SQLite database"),
    (b"PAR1", ": a Parquet file"), (b"\x93NUMPY", ": a NumPy array"),
    (b"\x7fELF", ": a program"))
# Plain decimal numbers in ASCII ("-12.5", "3e-4", ".5", "+1."); nothing else is
# a number: not "1_000", "1,000", "0x1F", "٣" (Arabic-Indic) or "１２" (full width).
_NUMBER = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_INFINITE = re.compile(r"[+-]?inf(?:inity)?", re.IGNORECASE)
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_THOUSANDS = re.compile(r"[+-]?[0-9]{1,3}(?:[,' _\u00a0\u202f][0-9]{3})+(?:\.[0-9]+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]*),[0-9]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not tab, CR, LF
_CONTROL_RE2 = r"[\x00-\x1f\x7f-\x9f]"  # in names and labels: tabs and line breaks too
_BLANK_OR_DELIMITERS = re.compile(r"[\s,;|]*")
_NEWLINE = re.compile(r"[\r\n]")
# A quoted field ("..." with "" for a quote inside). This unrolled-loop form
# cannot backtrack, so it is linear even on quotes that never close.
_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*"')
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}"
                             rb"|[\xf0-\xf4][\x80-\xbf]{3}")


def _mb(n: int) -> str:
    mb = n / 2**20
    return f"{mb:.2f} MB" if mb < 10 else f"{mb:.0f} MB"


def _show(value: str, limit: int = 40) -> str:
    """A user's value quoted for a message, shortened if long."""
    if len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    return repr(value)


def _line_of(data: bytes | str, pos: int) -> int:
    return data.count(b"\n" if isinstance(data, bytes) else "\n", 0, pos) + 1


def _decode(data: bytes) -> tuple[str, bytes | None]:
    """The file's text, and ``data`` itself if that is already the UTF-8 text."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                       (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"),
                       (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(codec)
            except UnicodeDecodeError as exc:
                family = codec[:6].upper()
                raise DatasetError(
                    f"The file starts with a {family} byte-order mark but is not valid "
                    f"{family} text (at byte {exc.start + len(bom):,}). Save it again as "
                    "CSV UTF-8.") from None
            return text, (data[len(bom):] if codec == "utf-8" else None)
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            raise DatasetError(_BINARY.format(kind=kind))
    codec = _utf16_without_bom(data[:4096])
    if codec is not None:
        try:
            return data.decode(codec), None
        except UnicodeDecodeError:
            pass  # not UTF-16 after all: judged as bytes below
    try:
        return data.decode("utf-8"), data
    except UnicodeDecodeError as exc:
        bad = exc.start
    if _binary(data[:65536]):
        raise DatasetError(_BINARY.format(kind=""))
    utf8 = _UTF8_MULTIBYTE.search(data)
    if utf8 is not None:
        raise DatasetError(
            f"The file mixes text encodings: line {_line_of(data, utf8.start()):,} is UTF-8 "
            f"but line {_line_of(data, bad):,} is not (byte 0x{data[bad]:02X}). Open it in a "
            "spreadsheet or text editor and save it again as CSV UTF-8.")
    try:  # a legacy single-byte file: Excel on Windows writes Windows-1252
        return data.decode("cp1252"), None
    except UnicodeDecodeError:  # one of the five bytes cp1252 leaves undefined
        return data.decode("latin-1"), None


def _utf16_without_bom(head: bytes) -> str | None:
    """The UTF-16 codec if ``head`` is unmistakably UTF-16 text without a
    byte-order mark (every other byte zero, as in ASCII text), else ``None``."""
    pairs = len(head) // 2
    if pairs < 4:
        return None
    even, odd = head[0:2 * pairs:2], head[1:2 * pairs:2]
    if odd.count(0) >= 0.9 * pairs and even.count(0) <= 0.1 * pairs:
        return "utf-16-le"
    if even.count(0) >= 0.9 * pairs and odd.count(0) <= 0.1 * pairs:
        return "utf-16-be"
    return None


def _binary(head: bytes | str) -> bool:
    """More than 5 % control characters (other than tab and line breaks)."""
    if isinstance(head, bytes):
        controls = sum(b < 32 and b not in (9, 10, 13) for b in head)
    else:
        controls = len(_CONTROL.findall(head))
    return controls > 0.05 * max(1, len(head))


def _text(data: bytes, max_bytes: int) -> tuple[str, bytes]:
    """The file as text, and as UTF-8 bytes for the CSV reader."""
    if len(data) > max_bytes:
        raise DatasetError(
            f"The file is {_mb(len(data))}; this server accepts CSV files up to "
            f"{_mb(max_bytes)}. Upload a smaller sample of your data.")
    if not data.strip():
        raise DatasetError(_EMPTY)
    text, utf8 = _decode(data)
    if _binary(text[:65536]):
        raise DatasetError(_BINARY.format(kind=""))
    control = _CONTROL.search(text)
    if control is not None:
        char = control.group()
        what = ("a NUL character (byte 0)" if char == "\x00"
                else f"the control character U+{ord(char):04X}")
        raise DatasetError(
            f"Line {_line_of(text, control.start()):,} contains {what}, which a text CSV "
            "file does not have: the file is damaged or not a CSV. Remove it, or export "
            "the table again as CSV.")
    if _BLANK_OR_DELIMITERS.fullmatch(text):
        raise DatasetError(_EMPTY)
    return text, (text.encode("utf-8") if utf8 is None else utf8)


def _first_line(text: str, max_columns: int) -> str:
    """The header row's line (it may not span lines), its size checked."""
    newline = _NEWLINE.search(text, 0, _HEADER_CHARS)
    end = -1 if newline is None else newline.start()
    if end < 0 and len(text) > _HEADER_CHARS:
        head = text[:_HEADER_CHARS]
        if 1 + max(head.count(d) for d in _DELIMITERS) > max_columns:
            raise DatasetError(
                f"The first line has more than {max_columns:,} columns; the playground "
                f"handles up to {max_columns:,} (numeric features and one label column).")
        raise DatasetError(
            f"The first line is longer than {_mb(_HEADER_CHARS)}. It must be the header "
            "row naming the columns, and every row must end with a line break.")
    line = text[:end if end >= 0 else len(text)]
    if _BLANK_OR_DELIMITERS.fullmatch(line):
        raise DatasetError(_BLANK_HEADER)
    if line.count('"') % 2:
        raise DatasetError(
            "The header row (line 1) has a quote (\") that is not closed on that line. "
            "Column names cannot span lines: fix the quotes in the first line.")
    return line


def _fields(line: str, delimiter: str) -> int:
    """Number of fields in ``line`` (delimiters inside quotes do not count)."""
    return _QUOTED.sub("", line).count(delimiter) + 1


def _guess_delimiter(text: str, header: str) -> str:
    """The delimiter that splits the header row into the same number of fields
    as the most sample lines do.

    A bounded, linear look at the first lines (``csv.Sniffer`` is quadratic on
    some inputs). Ties go to the earlier of comma, semicolon, tab, vertical bar.
    """
    sample = text[:_SNIFF_CHARS]
    lines = [ln for ln in sample.splitlines()[1:_SNIFF_LINES] if ln.strip()]
    if len(text) > _SNIFF_CHARS and len(lines) > 1:
        lines.pop()  # probably cut short
    best, best_score = ",", -1.0
    for d in _DELIMITERS:
        n = _fields(header, d)
        if n < 2:
            continue
        score = sum(_fields(ln, d) == n for ln in lines) / len(lines) if lines else 0.0
        if score > best_score:
            best, best_score = d, score
    return best


@dataclass(frozen=True)
class _Table:
    """A CSV file as text cells."""

    header: list[str]  # column names, stripped
    cells: object  # pyarrow string array of the stripped cells, column after column
    rows: np.ndarray  # each data row's number in messages (the header is row 1)

    def column(self, j: int):
        return self.cells.slice(j * len(self.rows), len(self.rows))


def _read_batches(utf8: bytes, delimiter: str, n_columns: int, max_records: int,
                  too_many: Callable[[], str]) -> list:
    """The file's rows (the header first) as pyarrow record batches of strings.

    Reading stops, and the file is refused, once more than ``max_records``
    data rows have been read.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    invalid: list = []
    skipped = 0

    def on_invalid(row) -> str:
        nonlocal skipped
        if not row.text.strip() and skipped < _MAX_SKIPPED:
            skipped += 1  # a line of spaces is as blank as an empty line
            return "skip"
        invalid.append(row)
        return "error"

    names = [f"c{i}" for i in range(n_columns)]
    options = dict(
        read_options=pacsv.ReadOptions(use_threads=False, block_size=_BLOCK_BYTES,
                                       column_names=names),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, quote_char='"', double_quote=True, escape_char=False,
            newlines_in_values=True, ignore_empty_lines=True, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), null_values=[],
            strings_can_be_null=False, quoted_strings_can_be_null=False, check_utf8=True))
    batches: list = []
    n = 0
    try:
        for batch in pacsv.open_csv(pa.py_buffer(utf8), **options):
            batches.append(batch)
            n += batch.num_rows
            if n > max_records + 1:  # + the header row
                raise DatasetError(too_many())
    except pa.ArrowInvalid as exc:
        raise DatasetError(_reader_error(exc, invalid, n, n_columns, delimiter)) from None
    return batches


def _reader_error(exc: Exception, invalid: list, n_read: int, n_columns: int,
                  delimiter: str) -> str:
    """A readable message for an error of pyarrow's CSV reader."""
    if invalid:
        row = invalid[0]
        where = f"Row {row.number:,}" if row.number else "A row"
        if not row.text.strip():
            return (f"The file has more than {_MAX_SKIPPED:,} lines holding only spaces. "
                    "Remove them.")
        multiline = '"' in row.text and ("\n" in row.text or "\r" in row.text)
        if multiline and row.text.count('"') % 2:
            return (f"{where} has a quoted value that is never closed: it runs on over the "
                    "following lines to the end of the file. Check the quotes (\") in that "
                    "row.")
        if row.number == 1:
            return "The header row could not be split into columns: check its quotes (\")."
        got = row.actual_columns
        hint = (" A quoted value in it runs over several lines: check the quotes (\")."
                if multiline else "")
        return (f"{where} has {got} value{'s' if got != 1 else ''} but the header has "
                f"{n_columns} columns. Every row needs one value per column (check for "
                f"missing or extra {_DELIMITER_NAMES[delimiter]}).{hint}")
    if "straddl" in str(exc):
        return (f"A row after row {n_read + 1:,} is longer than {_mb(_BLOCK_BYTES)}, or a "
                "quoted value there is never closed. Check the quotes (\") and that every "
                "row ends with a line break.")
    return f"The file is not valid CSV ({exc}). Check its quotes and delimiters."


def _table(data: bytes, max_bytes: int, max_rows: int = 10**9,
           max_columns: int = MAX_COLUMNS, max_cells: int = MAX_CELLS,
           header_only: bool = False) -> _Table:
    """Decode, check and split a CSV file into text cells (see the notes above)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text, utf8 = _text(data, max_bytes)
    line = _first_line(text, max_columns)
    delimiter = _guess_delimiter(text, line)
    n_columns = _fields(line, delimiter)
    if n_columns > max_columns:
        raise DatasetError(
            f"The file has {n_columns:,} columns; the playground handles up to "
            f"{max_columns:,} (numeric features and one label column). Drop some columns.")
    del text
    if header_only:
        utf8 = line.encode("utf-8")
    max_records = min(max_rows, max_cells // n_columns)

    def too_many() -> str:
        lines = utf8.count(b"\n") + (not utf8.endswith(b"\n"))
        if max_records < max_rows:
            return (f"The file has more than {max_records:,} rows of {n_columns:,} columns "
                    f"({lines:,} lines); this server accepts up to {max_cells:,} values. "
                    "Upload fewer rows or columns.")
        return (f"The file has more than {max_rows:,} data rows ({lines:,} lines); this "
                f"server accepts up to {max_rows:,}. Upload a random sample of your data.")

    batches = _read_batches(utf8, delimiter, n_columns, max_records, too_many)
    n = sum(b.num_rows for b in batches)  # the header row and the data rows
    # One array of all cells, column after column: every check below is one
    # vectorised call for the whole file, not one per column.
    cells = pc.utf8_trim_whitespace(pa.concat_arrays(
        [b.column(j) for j in range(n_columns) for b in batches]))
    del batches
    header = [cells[j * n].as_py() for j in range(n_columns)]
    _check_header(header)
    empty = pc.equal(cells, "").to_numpy(zero_copy_only=False).reshape(n_columns, n)
    keep = ~empty.all(axis=0)  # a row of blank cells (",,,") is dropped like a blank line
    keep[0] = False  # the header row
    cells = cells.filter(pa.array(np.tile(keep, n_columns)))
    return _Table(header, cells, np.flatnonzero(keep) + 1)


def _check_header(header: list[str]) -> None:
    """Every column has a unique, printable name of reasonable length."""
    if not any(header):
        raise DatasetError(_BLANK_HEADER)
    unnamed = [str(i + 1) for i, h in enumerate(header) if not h]
    if unnamed:
        which = ", ".join(unnamed[:10]) + (", ..." if len(unnamed) > 10 else "")
        raise DatasetError(
            f"Column{'s' if len(unnamed) > 1 else ''} {which} of {len(header)} "
            f"{'have' if len(unnamed) > 1 else 'has'} no name in the header row. Give every "
            "column a name, or delete the empty columns.")
    for i, h in enumerate(header):
        if len(h) > MAX_NAME_CHARS:
            raise DatasetError(
                f"The name of column {i + 1} is {len(h):,} characters long ({_show(h)}); "
                f"column names may have up to {MAX_NAME_CHARS}. Is the first line the "
                "header row?")
        if re.search(_CONTROL_RE2, h):
            raise DatasetError(f"The name of column {i + 1} ({_show(h)}) contains a control "
                               "character (e.g. a tab or line break). Use printable names.")
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in seen:
            raise DatasetError(
                f"The header names the column {_show(h)} twice (columns {seen[h] + 1} and "
                f"{i + 1}). Column names must be unique: rename or delete one of them.")
        seen[h] = i


def csv_columns(data: bytes, max_bytes: int) -> list[str]:
    """Header names of a CSV file (for choosing the label column).

    Reads the header row only; :func:`parse_csv` checks the rest.
    """
    return _table(data, max_bytes, header_only=True).header


def parse_csv(data: bytes, label_column: str | None = None, *, max_bytes: int = 5 * 2**20,
              max_rows: int = 100_000, name: str = "Upload CSV",
              max_columns: int = MAX_COLUMNS, max_cells: int = MAX_CELLS) -> Dataset:
    """Parse an uploaded CSV: numeric feature columns and one label column.

    Parameters
    ----------
    data : bytes
        The file's content: UTF-8 (with or without BOM), UTF-16/32 with BOM or
        Windows-1252; separated by commas, semicolons, tabs or vertical bars;
        the first line names the columns. Feature values are plain decimal
        numbers in ASCII (``-12.5``, ``3e-4``).
    label_column : str, optional
        Header of the label column; default: the last column.
    max_bytes, max_rows, max_columns, max_cells : int
        Limits (cells = rows x columns); reading stops as soon as one is
        passed and the file is refused.
    name : str
        The data set's name.

    Raises
    ------
    DatasetError
        With a message naming the problem (empty file, no rows, binary data,
        mixed encodings, blank, missing or duplicate column names, ragged rows,
        unclosed quotes, non-numeric, missing or too large feature values,
        a single class, classes with a single row, more than 50 classes, too
        large) and how to fix it.
    """
    t = _table(data, max_bytes, max_rows, max_columns, max_cells)
    header, n_rows = t.header, len(t.rows)
    if len(header) < 2:
        raise DatasetError("The file has a single column. It needs numeric feature columns "
                           "and one label column, separated by commas.")
    if n_rows == 0:
        raise DatasetError("The file has a header row but no data rows. Add one row per "
                           "sample below the header.")
    if n_rows < MIN_ROWS:
        raise DatasetError(f"The file has only {n_rows} data rows; at least {MIN_ROWS} "
                           "are needed to train and test a model.")
    if len(header) - 1 > MAX_FEATURES:
        raise DatasetError(f"The file has {len(header) - 1} feature columns; the playground "
                           f"handles up to {MAX_FEATURES}.")
    label = header[-1] if label_column is None else label_column.strip()
    if label not in header:
        raise DatasetError(f"There is no column named {_show(label)}. Pick the label column "
                           "from the list.")
    j = header.index(label)
    _check_labels(label, t.column(j), t.rows)
    feature_idx = [i for i in range(len(header)) if i != j]
    X = _features(t, feature_idx)
    y = _labels(label, t.column(j), t.rows)
    n_classes = len(np.unique(y))
    return Dataset(name, X, y, tuple(header[i] for i in feature_idx),
                   f"Uploaded CSV: {n_rows:,} rows, {len(feature_idx)} features, "
                   f"{n_classes} classes (label column {label!r}).", label_name=label)


def _flags(mask) -> np.ndarray:
    """Indices where a pyarrow boolean array is true."""
    return np.flatnonzero(mask.to_numpy(zero_copy_only=False))


def _is_missing(column):
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.is_in(pc.utf8_lower(column), value_set=pa.array(sorted(_MISSING), pa.string()))


def _check_labels(label: str, column, rows: np.ndarray) -> None:
    """Every row has a label: printable text of reasonable length."""
    import pyarrow.compute as pc

    missing = _flags(_is_missing(column))
    if len(missing):
        raise DatasetError(f"The label column {label!r} is empty in {len(missing)} rows "
                           f"(first: row {rows[missing[0]]}). Fill in the labels or drop "
                           "those rows.")
    long = _flags(pc.greater(pc.utf8_length(column), MAX_LABEL_CHARS))
    if len(long):
        value = column[int(long[0])].as_py()
        raise DatasetError(
            f"The label column {label!r} has a value of {len(value):,} characters in row "
            f"{rows[long[0]]} ({_show(value)}); labels are class names of up to "
            f"{MAX_LABEL_CHARS} characters. Is this the right label column?")
    controls = _flags(pc.match_substring_regex(column, _CONTROL_RE2))
    if len(controls):
        raise DatasetError(
            f"The label in row {rows[controls[0]]} ({_show(column[int(controls[0])].as_py())})"
            " contains a control character (e.g. a tab or line break). Use printable labels.")


def _labels(label: str, column, rows: np.ndarray) -> np.ndarray:
    """The label column as text, or as integers if every label is a plain integer;
    refused unless it has 2 to 50 classes of at least 2 rows each."""
    import pyarrow.compute as pc

    counts = pc.value_counts(column)
    classes = counts.field("values").to_pylist()
    if len(classes) < 2:
        raise DatasetError(f"The label column {label!r} has only one class "
                           f"({_show(classes[0])}). A classifier needs at least two classes: "
                           "is this the right label column?")
    if len(classes) > MAX_CLASSES:
        each = " (every row has its own)" if len(classes) == len(column) else ""
        raise DatasetError(f"The label column {label!r} has {len(classes)} different values; "
                           f"the playground supports up to {MAX_CLASSES} classes. Is this the "
                           f"right label column{each}, not an id or a measurement?")
    if len(classes) == len(column):
        raise DatasetError(
            f"Every row has a different label in the label column {label!r} ({len(classes)} "
            "rows, as many classes). Each class needs several rows to learn from: is this "
            "the right label column (not an id)?")
    singles = [c for c, k in zip(classes, counts.field("counts").to_pylist()) if k == 1]
    if singles:
        where = sorted((int(rows[pc.index(column, c).as_py()]), c) for c in singles)
        names = ", ".join(f"{_show(c, 20)} (row {r})" for r, c in where[:5])
        names += ", ..." if len(where) > 5 else ""
        raise DatasetError(
            f"{len(singles)} class{'es have' if len(singles) > 1 else ' has'} a single row in "
            f"the label column {label!r}: {names}. Every class needs at least 2 rows (one to "
            "train on, one to test): add rows or remove those classes.")
    labels = np.asarray(column.to_numpy(zero_copy_only=False).astype(str))
    if all(_INTEGER.fullmatch(c) and str(int(c)) == c for c in classes):
        return labels.astype(np.int64)  # integer labels read back as integers
    return labels


def _features(t: _Table, columns: list[int]) -> np.ndarray:
    """The feature columns as float64 ``(n_rows, n_features)``; refused unless every
    cell is a plain number (the first column with a problem is named)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    m = len(t.rows)
    if columns == list(range(len(columns))):  # the label is the last column
        cells = t.cells.slice(0, len(columns) * m)
    else:
        cells = pa.concat_arrays([t.column(i) for i in columns])
    numbers = pc.match_substring_regex(cells, _NUMBER)  # missing cells are not numbers
    if not pc.all(numbers).as_py():
        k = int(_flags(pc.invert(numbers))[0]) // m
        _explain_column(t.header[columns[k]], t.column(columns[k]), t.rows)
    values = pc.cast(cells, pa.float64()).to_numpy(zero_copy_only=False)
    del cells, numbers
    overflow = np.flatnonzero(~np.isfinite(values))
    if len(overflow):
        k, i = divmod(int(overflow[0]), m)
        raise DatasetError(
            f"Column {t.header[columns[k]]!r} has a number too large to compute with "
            f"({_show(t.column(columns[k])[i].as_py())} in row {t.rows[i]}; the largest is "
            "about 1.8e308). Rescale the column, e.g. to other units.")
    X = np.empty((m, len(columns)))
    X[...] = values.reshape(len(columns), m).T
    return X


def _explain_column(name: str, column, rows: np.ndarray) -> None:
    """Raise what is wrong with a feature column that is not all plain numbers."""
    import pyarrow.compute as pc

    gaps = _flags(_is_missing(column))
    if len(gaps):
        raise DatasetError(f"Column {name!r} has {len(gaps)} missing values (first: row "
                           f"{rows[gaps[0]]}). Fill them in or drop those rows.")
    first = int(_flags(pc.invert(pc.match_substring_regex(column, _NUMBER)))[0])
    value = column[first].as_py()
    if _INFINITE.fullmatch(value):
        raise DatasetError(f"Column {name!r} has a non-finite value ({value!r} in row "
                           f"{rows[first]}). Replace it with a number.")
    raise DatasetError(
        f"Column {name!r} is not numeric (row {rows[first]} has {_show(value)}). "
        f"{_number_hint(value)}Feature columns must hold numbers: encode categories as "
        "numbers, drop the column, or choose it as the label column.")


def _number_hint(value: str) -> str:
    """Why a value that looks like a number is not read as one ("" if it does not)."""
    for char in value:
        if not char.isascii() and not char.isspace():
            what = unicodedata.name(char, f"U+{ord(char):04X}")
            return (f"It contains {char!r} ({what}): only the ASCII digits 0-9, '.', '+', "
                    "'-' and 'e' make numbers. ")
    if _THOUSANDS.fullmatch(value) or ("_" in value
                                       and re.fullmatch(_NUMBER, value.replace("_", ""))):
        return ("Write numbers without thousands separators (1000, not 1,000 or 1_000) and "
                "with '.' as the decimal point. ")
    if _DECIMAL_COMMA.fullmatch(value):
        return "Use '.' as the decimal point, not ','. "
    return ""


# ---- splitting and scaling --------------------------------------------------
@dataclass(frozen=True)
class Prepared:
    """A data set split into train / validation / test, scaled, labels as indices."""

    X_train: np.ndarray
    y_train: np.ndarray  # class indices
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple  # label of each class index
    test_index: np.ndarray  # rows of the original data set in the test split
    train_index: np.ndarray
    mean: np.ndarray  # scaling applied: (X - mean) / scale
    scale: np.ndarray
    grid: np.ndarray | None  # (GRID_STEPS**2, 2), scaled, for 2-D data
    grid_x: np.ndarray | None  # (GRID_STEPS,) in original units
    grid_y: np.ndarray | None


# Standardising is done in units of a power of two per column: ldexp(X, -e) is
# exact, so the results equal (X - mean) / scale bit for bit on ordinary data,
# while features near the float64 limit (1e200, 1e308) or below its precision
# (1e-310) no longer overflow, underflow or turn into zeros.
_MAX_STANDARDIZED = 1e6  # standardised values are clipped here (see scale_rows)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def fit_scaling(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``mean`` and ``scale`` (standard deviation, 1 for a constant
    column), computed without overflow for any finite ``X``; both are finite."""
    _, e = np.frexp(np.abs(X).max(axis=0))  # |X[:, j]| < 2**e[j]
    Xs = np.ldexp(X, -e)  # |Xs| < 1: squares cannot overflow
    mean, std = Xs.mean(axis=0), Xs.std(axis=0)  # std <= RMS <= max |Xs| < 1
    scale = np.ldexp(std, e)
    scale[scale == 0] = 1.0  # constant feature: leave it at zero
    return np.ldexp(mean, e), scale


def scale_rows(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(X - mean) / scale`` without overflow, clipped to +-1e6.

    Rows like the ones ``mean`` and ``scale`` were fitted on stay within
    +-sqrt(n) of 0; a test row a million standard deviations out is an
    outlier whose exact value no network output depends on, and clipping it
    keeps float32 training and evaluation finite.
    """
    _, e = np.frexp(np.maximum(np.abs(mean), scale))
    with np.errstate(over="ignore"):
        out = (np.ldexp(X, -e) - np.ldexp(mean, -e)) / np.ldexp(scale, -e)
    return np.clip(out, -_MAX_STANDARDIZED, _MAX_STANDARDIZED, out=out)


def standardize(X: np.ndarray) -> np.ndarray:
    """``X`` with every column scaled to mean 0 and variance 1 (overflow-free)."""
    return scale_rows(X, *fit_scaling(X))


def _check_float32_range(ds: Dataset) -> None:
    """Unstandardised features must fit float32, the precision networks train in."""
    if not len(ds.X):
        return
    peak = np.abs(ds.X).max(axis=0)
    too_large = np.flatnonzero(peak > _FLOAT32_MAX)
    if len(too_large):
        j = int(too_large[0])
        raise DatasetError(
            f"Feature {ds.feature_names[j]!r} has values up to {peak[j]:.3g}, beyond the "
            f"range of float32 ({_FLOAT32_MAX:.3g}) the network computes in. Turn on "
            "“Standardise features” or rescale that column.")


def _grid_axis(x: np.ndarray) -> np.ndarray:
    """Decision-boundary grid along one feature: its range plus 10 % each side."""
    _, e = np.frexp(np.abs(x).max())  # computed in units of 2**e: cannot overflow
    lo, hi = np.ldexp(x.min(), -e), np.ldexp(x.max(), -e)
    pad = 0.1 * (hi - lo) if hi > lo else (0.1 * abs(hi) if hi != 0 else np.ldexp(1.0, -e))
    with np.errstate(over="ignore"):
        axis = np.ldexp(np.linspace(lo - pad, hi + pad, GRID_STEPS), e)
    return np.clip(axis, -np.finfo(float).max, np.finfo(float).max)


def _split(idx: np.ndarray, y: np.ndarray, size: float, seed: int
           ) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(idx, test_size=size, random_state=seed, stratify=y[idx])
    except ValueError:
        # A class with a single sample cannot be stratified: plain random split.
        return train_test_split(idx, test_size=size, random_state=seed)


def prepare(ds: Dataset, test_size: int, val_size: int, standardize: bool, seed: int
            ) -> Prepared:
    """Split (stratified), standardise on the training split, encode labels.

    Parameters
    ----------
    ds : Dataset
    test_size : int
        Percent of the samples held out for testing.
    val_size : int
        Percent of the remaining samples held out for validation (0: none).
    standardize : bool
    seed : int
        Seeds the splits.
    """
    classes, y_idx = np.unique(ds.y, return_inverse=True)
    n = len(y_idx)
    idx = np.arange(n)
    train, test = _split(idx, y_idx, test_size / 100, seed)
    val = None
    if val_size > 0:
        train, val = _split(train, y_idx, val_size / 100, seed + 1)
    if len(train) < len(classes) or len(test) == 0:
        raise DatasetError("The splits leave too few training or test samples; use a "
                           "smaller test split or more data.")
    X = ds.X
    if standardize:
        mean, scale = fit_scaling(X[train])

        def t(rows: np.ndarray) -> np.ndarray:
            return scale_rows(X[rows], mean, scale).astype(np.float32)
    else:
        mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        _check_float32_range(ds)

        def t(rows: np.ndarray) -> np.ndarray:
            return X[rows].astype(np.float32)

    grid = grid_x = grid_y = None
    if ds.is_2d:
        grid_x, grid_y = (_grid_axis(X[:, k]) for k in (0, 1))
        gx, gy = np.meshgrid(grid_x, grid_y)
        points = np.column_stack([gx.ravel(), gy.ravel()])
        grid = (scale_rows(points, mean, scale) if standardize
                else np.clip(points, -_FLOAT32_MAX, _FLOAT32_MAX)).astype(np.float32)
    return Prepared(
        X_train=t(train), y_train=y_idx[train],
        X_val=None if val is None else t(val), y_val=None if val is None else y_idx[val],
        X_test=t(test), y_test=y_idx[test], classes=tuple(classes.tolist()),
        test_index=test, train_index=train, mean=mean, scale=scale,
        grid=grid, grid_x=grid_x, grid_y=grid_y)
