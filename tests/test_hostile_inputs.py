"""Hostile and unlucky inputs: a corpus of CSV uploads and crafted ``.npz`` models.

Every file gets a specific message (asserted on its text), never a traceback
(only ``DatasetError`` / ``ValueError``), finishes fast and stays within memory.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nn_core import NeuralNetworkClassifier
from nn_core.io import load_network
from nn_core.network import Network
from playground.datasets import (
    MAX_CLASSES,
    DatasetError,
    csv_columns,
    fit_scaling,
    parse_csv,
    prepare,
    scale_rows,
    standardize,
)

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    """Pay the one-off imports (pyarrow's CSV reader and compute kernels) before timing."""
    parse_csv(table(30))
    load_network(io.BytesIO(model_bytes()))


def measure(call, *args, **kwargs):
    """``(exception or result, seconds, peak bytes traced by tracemalloc)``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = call(*args, **kwargs)
    except Exception as exc:  # the test looks at its type
        out = exc
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


# ---- CSV corpus -------------------------------------------------------------------
def table(n: int = 30, row=None, header: str = "a,b,label", sep: str = ",",
          end: str = "\n") -> bytes:
    """A CSV text (as UTF-8 bytes) of ``n`` rows made by ``row(i)`` (default: two
    numbers and a yes/no label)."""
    row = row or (lambda i: f"{i},{i * 2 % 7},{'yes' if i % 3 else 'no'}")
    lines = [header, *(row(i) for i in range(n))]
    return (end.join(lines) + end).replace(",", sep).encode()


def labelled(first: str, n: int = 30) -> bytes:
    """A file whose feature 'a' is ``first`` in every row."""
    return table(n, lambda i: f"{first},{i},{'ab'[i % 2]}")


def ok(check=None):
    return ("ok", check)


def utf16_no_bom() -> bytes:
    return table().decode().encode("utf-16-le")


def mixed_encodings() -> bytes:
    utf8 = "a,b,label\n" + "".join(f"{i},1,café\n" for i in range(15))
    latin1 = "".join(f"{i},2,naïve\n" for i in range(15))
    return utf8.encode("utf-8") + latin1.encode("latin-1")


def cp1252() -> bytes:
    return ("a,b,label\n" + "".join(f"{i},1,{'café' if i % 2 else 'thé'}\n"
                                    for i in range(30))).encode("cp1252")


def quadratic_for_sniffer() -> bytes:
    # csv.Sniffer took 8.8 s on this (quadratic, holding the GIL)
    return b"a,b\n" + b'\n"' * 10000 + b"\n1,x\n" * 5


def short_rows_5mb() -> bytes:
    return b"a,b\n" + b"1,2\n" * (5 * MB // 4 - 2)


def png() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


def xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<xml/>")
    return buf.getvalue()


def separable(scale: float):
    def check(ds):
        p = prepare(ds, 20, 0, True, 0)
        x = p.X_train[:, 0]
        assert np.isfinite(p.X_train).all() and np.isfinite(p.X_test).all()
        assert x.std() == pytest.approx(1, rel=1e-3)
        assert set(np.sign(x[p.y_train == 0])) != set(np.sign(x[p.y_train == 1]))
        assert ds.X[:, 0].max() == scale
    return check


def refuses_unscaled(ds):
    separable(1e308)(ds)
    with pytest.raises(DatasetError, match=r"Feature 'a' has values up to 1e\+308, beyond the "
                                           r"range of float32 .* Turn on “Standardise"):
        prepare(ds, 20, 0, False, 0)


def labels(*expected):
    def check(ds):
        assert sorted(set(ds.y.tolist())) == sorted(expected)
        assert ds.X.shape == (30, 2) and ds.feature_names == ("a", "b")
    return check


CSV_CORPUS = [
    # (id, bytes, regex of the message, or ok(check))
    ("sniffer-quadratic", quadratic_for_sniffer(),
     r"^Row 2 has 1 value but the header has 2 columns\. .* A quoted value in it runs over "
     r"several lines: check the quotes"),
    ("5MB-short-rows", short_rows_5mb(),
     r"^The file has more than 100,000 data rows \(1,310,719 lines\); this server accepts up "
     r"to 100,000\. Upload a random sample"),
    ("duplicate-label-name", table(30, lambda i: f"{i % 2},{i},{i % 3}", header="y,x1,y"),
     r"^The header names the column 'y' twice \(columns 1 and 3\)\. Column names must be "
     r"unique: rename or delete one of them\.$"),
    ("duplicate-after-strip", table(header="a, a ,label"),
     r"names the column 'a' twice \(columns 1 and 2\)"),
    ("empty-column-name", table(header="a,,label"),
     r"^Column 2 of 3 has no name in the header row\. Give every column a name"),
    ("blank-header-row", b",,\n" + table().split(b"\n", 1)[1],
     r"^The header row \(line 1\) is blank\. The first line must name the columns"),
    ("blank-first-line", b"\n" + table(), r"^The header row \(line 1\) is blank"),
    ("header-quote-unclosed", b'a,"b,label\n' + table().split(b"\n", 1)[1],
     r"header row \(line 1\) has a quote \(\"\) that is not closed"),
    ("underscore-number", labelled("1_000"),
     r"^Column 'a' is not numeric \(row 2 has '1_000'\)\. Write numbers without thousands "
     r"separators"),
    ("arabic-indic-digit", labelled("٣"),
     r"^Column 'a' is not numeric \(row 2 has '٣'\)\. It contains '٣' \(ARABIC-INDIC DIGIT "
     r"THREE\): only the ASCII digits 0-9"),
    ("full-width-digits", labelled("\uff11\uff12"),
     "Column 'a' is not numeric \\(row 2 has '\uff11\uff12'\\)\\. It contains '\uff11' "
     "\\(FULLWIDTH DIGIT ONE\\)"),
    ("thousands-separator", labelled('"1,000"'),
     r"Column 'a' is not numeric \(row 2 has '1,000'\)\. Write numbers without thousands "
     r"separators \(1000, not 1,000 or 1_000\)"),
    ("decimal-comma-semicolons", table(30, lambda i: f"1,5;{i};{'ab'[i % 2]}",
                                       header="a;b;label"),
     r"Column 'a' is not numeric \(row 2 has '1,5'\)\. Use '\.' as the decimal point"),
    ("unicode-minus", labelled("\u22121"), "It contains '\u2212' \\(MINUS SIGN\\)"),
    ("hex-number", labelled("0x1F"), r"^Column 'a' is not numeric \(row 2 has '0x1F'\)\. "
                                     r"Feature columns must hold numbers"),
    ("1e200-separable", table(30, lambda i: f"{1e200 if i % 2 else -1e200},{i},{'ab'[i % 2]}"),
     ok(separable(1e200))),
    ("1e308-separable", table(30, lambda i: f"{1e308 if i % 2 else -1e308},{i},{'ab'[i % 2]}"),
     ok(refuses_unscaled)),
    ("1e309-overflows", table(30, lambda i: f"{'1e309' if i == 7 else i},{i},{'ab'[i % 2]}"),
     r"^Column 'a' has a number too large to compute with \('1e309' in row 9; the largest is "
     r"about 1\.8e308\)"),
    ("infinity", table(30, lambda i: f"{'-Infinity' if i == 7 else i},{i},{'ab'[i % 2]}"),
     r"^Column 'a' has a non-finite value \('-Infinity' in row 9\)"),
    ("utf8-bom", b"\xef\xbb\xbf" + table(), ok(labels("no", "yes"))),
    ("utf16-le-bom", b"\xff\xfe" + table().decode().encode("utf-16-le"), ok(labels("no", "yes"))),
    ("utf16-be-bom", table().decode().encode("utf-16"), ok(labels("no", "yes"))),
    ("utf16-be-bom-explicit", b"\xfe\xff" + table().decode().encode("utf-16-be"),
     ok(labels("no", "yes"))),
    ("utf16-without-bom", utf16_no_bom(), ok(labels("no", "yes"))),
    ("utf16-bom-odd-bytes", b"\xff\xfe" + table().decode().encode("utf-16-le") + b"x",
     r"^The file starts with a UTF-16 byte-order mark but is not valid UTF-16 text"),
    ("windows-1252", cp1252(), ok(labels("café", "thé"))),
    ("mixed-encodings", mixed_encodings(),
     r"^The file mixes text encodings: line 2 is UTF-8 but line 17 is not \(byte 0xEF\)\. "
     r"Open it in a spreadsheet or text editor and save it again as CSV UTF-8\.$"),
    ("crlf", table(end="\r\n"), ok(labels("no", "yes"))),
    ("cr-only", table(end="\r"), ok(labels("no", "yes"))),
    ("semicolons", table(sep=";"), ok(labels("no", "yes"))),
    ("tabs", table(sep="\t"), ok(labels("no", "yes"))),
    ("quoted-cells", table(30, lambda i: f'"{i}","{i % 7}","{"ab"[i % 2]}"'), ok()),
    ("100000-columns", (",".join(f"c{i}" for i in range(100_000)) + "\n"
                        + ",".join("1" for _ in range(100_000)) + "\n").encode(),
     r"^The file has 100,000 columns; the playground handles up to 1,001 \(numeric features "
     r"and one label column\)\. Drop some columns\.$"),
    ("giant-header-line", ",".join("1" for _ in range(2_000_000)).encode(),
     r"^The first line has more than 1,001 columns"),
    ("giant-data-line", ("a,b,label\n" + ",".join("1" for _ in range(2_000_000))).encode(),
     r"^A row after row 2 is longer than 0\.25 MB, or a quoted value there is never closed"),
    ("quote-never-closed", table(5) + b'1,"2,x\n' + table(10).split(b"\n", 1)[1],
     r"^Row 7 has a quoted value that is never closed: it runs on over the following lines "
     r"to the end of the file\."),
    ("ragged-row", table(5) + b"1,2,3,x\n" + table(10).split(b"\n", 1)[1],
     r"^Row 7 has 4 values but the header has 3 columns\. Every row needs one value per "
     r"column \(check for missing or extra commas\)\.$"),
    ("formulas-in-labels", table(30, lambda i: f"{i},{i % 7},"
                                 + ('"=HYPERLINK(""http://evil"",""x"")"' if i % 2
                                    else "@SUM(A1)")),
     ok(labels('=HYPERLINK("http://evil","x")', "@SUM(A1)"))),
    ("one-row-per-class", table(12, lambda i: f"{i},{i},c{i % 11}"),
     r"^10 classes have a single row in the label column 'label': 'c1' \(row 3\), 'c2' "
     r"\(row 4\), .*Every class needs at least 2 rows \(one to train on, one to test\)"),
    ("as-many-classes-as-rows", table(12, lambda i: f"{i},{i},c{i}"),
     r"^Every row has a different label in the label column 'label' \(12 rows, as many "
     r"classes\)\. .* is this the right label column \(not an id\)\?$"),
    ("more-classes-than-supported", table(60, lambda i: f"{i},{i},id{i}"),
     rf"has 60 different values; the playground supports up to {MAX_CLASSES} classes\. Is "
     r"this the right label column \(every row has its own\), not an id"),
    ("empty-file", b"", r"^The file is empty\."),
    ("only-delimiters", b",,,\n, ,\n", r"^The file is empty\."),
    ("only-header", b"a,b,label\n", r"^The file has a header row but no data rows\."),
    ("nul-byte", table(5) + b"1,2\x00,x\n" + table(10).split(b"\n", 1)[1],
     r"^Line 7 contains a NUL character \(byte 0\), which a text CSV file does not have"),
    ("png-renamed", png(), r"not a text CSV file \(it contains binary data: a PNG image\)"),
    ("xlsx-renamed", xlsx(), r"not a text CSV file \(it contains binary data, e\.g\. an Excel "
                             r"workbook \(\.xlsx\)"),
    ("random-binary", np.random.default_rng(0).bytes(4096),
     r"^This is not a text CSV file \(it contains binary data\)"),
    ("very-long-text-cell", table(5) + b"1," + b"x" * 200_000 + b",x\n"
     + table(10).split(b"\n", 1)[1],
     r"^Column 'b' is not numeric \(row 7 has 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\.\.\. "
     r"\(200,000 characters\)\)"),
    ("very-long-number", table(5) + b"1," + b"9" * 200_000 + b",x\n"
     + table(10).split(b"\n", 1)[1], r"^Column 'b' has a number too large to compute with"),
    ("very-long-label", table(5) + b"1,2," + b"y" * 200_000 + b"\n"
     + table(10).split(b"\n", 1)[1],
     r"^The label column 'label' has a value of 200,000 characters in row 7 .*labels are "
     r"class names of up to 100 characters"),
    ("very-long-column-name", table(header="a," + "b" * 5000 + ",label"),
     r"^The name of column 2 is 5,000 characters long"),
    ("tab-inside-label", table(30, lambda i: f'{i},{i},"{"a" if i % 2 else "b"}\tx"'),
     r"^The label in row 2 \('b\\tx'\) contains a control character"),
    ("lines-of-spaces", table() + b"   \n" * 5000,
     r"^The file has more than 1,000 lines holding only spaces\. Remove them\.$"),
    ("trailing-blank-rows", table() + b",,\n  \n\n , ,\n", ok(labels("no", "yes"))),
    ("missing-feature", table(30, lambda i: f"{'' if i == 4 else i},{i},{'ab'[i % 2]}"),
     r"^Column 'a' has 1 missing values \(first: row 6\)"),
    ("missing-label", table(30, lambda i: f"{i},{i},{'' if i == 4 else 'ab'[i % 2]}"),
     r"^The label column 'label' is empty in 1 rows \(first: row 6\)"),
    ("single-column", b"label\n" + b"a\nb\n" * 10, r"^The file has a single column"),
    ("too-few-rows", table(3), r"^The file has only 3 data rows; at least 10"),
    ("single-class", table(30, lambda i: f"{i},{i},same"), r"only one class \('same'\)"),
    ("big-integer-labels", table(30, lambda i: f"{i},{i},{'9' * 20 if i % 2 else '-5'}"),
     ok(labels("9" * 20, "-5"))),
    ("integer-labels", table(30, lambda i: f"{i},{i},{i % 3 - 1}"), ok(labels(-1, 0, 1))),
]


@pytest.mark.parametrize("data,expected", [c[1:] for c in CSV_CORPUS],
                         ids=[c[0] for c in CSV_CORPUS])
def test_csv_corpus(data, expected):
    out, seconds, _ = measure(parse_csv, data, max_bytes=6 * MB)
    if isinstance(expected, tuple):
        assert not isinstance(out, Exception), out
        if expected[1] is not None:
            expected[1](out)
    else:
        assert type(out) is DatasetError, repr(out)
        assert len(str(out)) < 600
        assert re.search(expected, str(out)), str(out)
    assert seconds < 2.0


def test_corpus_is_large_enough():
    assert len(CSV_CORPUS) >= 20 and len(NPZ_CORPUS) >= 10


def test_quadratic_sniffer_file_is_fast():
    best = min(measure(parse_csv, quadratic_for_sniffer())[1] for _ in range(3))
    assert best < 0.5
    assert min(measure(csv_columns, quadratic_for_sniffer(), MB)[1] for _ in range(3)) < 0.5


def test_5mb_of_short_rows_stops_at_the_row_limit():
    data = short_rows_5mb()
    out, seconds, peak = measure(parse_csv, data, max_bytes=6 * MB)
    assert isinstance(out, DatasetError) and "more than 100,000 data rows" in str(out)
    # Before: parsed whole, 230 MiB and 1 s. Reading stops after the first blocks.
    print(f"5 MB short rows: {seconds * 1000:.0f} ms, tracemalloc peak {peak / MB:.1f} MiB")
    assert seconds < 1.0
    assert peak < 32 * MB


def test_5mb_of_short_rows_peak_rss_subprocess():
    """tracemalloc does not see pyarrow's allocator: measure the process's peak RSS."""
    script = textwrap.dedent("""
        from pathlib import Path
        from playground.datasets import DatasetError, parse_csv

        def kib(field):
            status = Path("/proc/self/status").read_text().splitlines()
            return int(next(ln for ln in status if ln.startswith(field)).split()[1])

        parse_csv(b"a,b,label\\n" + b"".join(b"%d,1,%s\\n" % (i, b"ab"[i % 2:i % 2 + 1])
                                            for i in range(30)))
        data = b"a,b\\n" + b"1,2\\n" * (5 * 2**20 // 4 - 2)
        before = kib("VmRSS:")
        try:
            Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
        except OSError:
            raise SystemExit("no /proc/self/clear_refs")
        try:
            parse_csv(data)
        except DatasetError:
            pass
        print(kib("VmHWM:") - before)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    if "no /proc/self/clear_refs" in out.stderr:
        pytest.skip("this kernel cannot reset the peak RSS")
    assert out.returncode == 0, out.stderr
    grown_mib = int(out.stdout.split()[-1]) / 1024
    print(f"5 MB short rows: peak RSS grew {grown_mib:.1f} MiB")
    assert grown_mib < 64


def test_row_and_cell_limits_stop_reading():
    data = table(30)
    with pytest.raises(DatasetError, match=r"more than 10 data rows \(31 lines\); this server "
                                           r"accepts up to 10\."):
        parse_csv(data, max_rows=10)
    with pytest.raises(DatasetError, match=r"more than 20 rows of 3 columns \(31 lines\); this "
                                           r"server accepts up to 60 values\."):
        parse_csv(data, max_cells=60)
    with pytest.raises(DatasetError, match=r"has 3 columns; the playground handles up to 2"):
        parse_csv(data, max_columns=2)
    with pytest.raises(DatasetError, match=r"The file is 0\.00 MB; this server accepts CSV "
                                           r"files up to 0\.00 MB"):
        parse_csv(data, max_bytes=100)


def test_csv_columns_reads_the_header_only():
    data = table(30) + b"not,a,valid,row\n"
    assert csv_columns(data, MB) == ["a", "b", "label"]
    assert csv_columns(b"\xef\xbb\xbf x , y ,label\r\n1,2,3\r\n", MB) == ["x", "y", "label"]
    with pytest.raises(DatasetError, match="names the column 'y' twice"):
        csv_columns(b"y,x1,y\n1,2,3\n", MB)
    out, seconds, _ = measure(csv_columns, short_rows_5mb(), 6 * MB)
    assert out == ["a", "b"] and seconds < 0.5


def test_label_column_named_with_spaces_and_formulas_survive_parsing():
    data = table(30, lambda i: f"{i},{i % 5},{'-1+cmd' if i % 2 else '=1+1'}",
                 header="a, b ,  kind ")
    ds = parse_csv(data, label_column=" kind")
    assert ds.label_name == "kind" and ds.feature_names == ("a", "b")
    assert set(ds.y) == {"-1+cmd", "=1+1"}


# ---- scaling --------------------------------------------------------------------
def test_scaling_matches_the_textbook_formula_bit_for_bit():
    from playground.datasets import DATASET_NAMES, load_builtin

    for name in DATASET_NAMES:
        X = load_builtin(name, 300, 0.2, 3, 1).X
        mean, scale = fit_scaling(X[:200])
        textbook_scale = X[:200].std(axis=0)
        textbook_scale[textbook_scale == 0] = 1.0
        np.testing.assert_array_equal(mean, X[:200].mean(axis=0))
        np.testing.assert_array_equal(scale, textbook_scale)
        np.testing.assert_array_equal(scale_rows(X, mean, scale),
                                      (X - mean) / textbook_scale)


def test_scaling_at_the_ends_of_float64():
    X = np.array([[1e308, 1e-310, 5.0], [-1.7e308, 3e-310, 5.0], [0.0, 2e-310, 5.0]])
    Xs = standardize(X)
    assert np.isfinite(Xs).all()
    np.testing.assert_allclose(Xs.std(axis=0), [1, 1, 0], atol=1e-12)
    np.testing.assert_allclose(Xs[:, 1], [-1.22474487, 1.22474487, 0], rtol=1e-6)
    # a test row far outside the training range is clipped, not infinite
    mean, scale = fit_scaling(np.array([[0.0], [1.0]]))
    assert scale_rows(np.array([[1e308], [-1e308]]), mean, scale).tolist() == [[1e6], [-1e6]]


def test_2d_grid_of_huge_features_is_finite():
    rows = [f"{(1e308 if i % 2 else -1.5e308) * (1 - i / 100)},{i},{'ab'[i % 2]}"
            for i in range(30)]
    ds = parse_csv(("x,y,label\n" + "\n".join(rows)).encode())
    p = prepare(ds, 20, 0, True, 0)
    assert np.isfinite(p.grid).all() and np.isfinite(p.grid_x).all()
    assert p.grid_x[0] < ds.X[:, 0].min() and p.grid_x[-1] > ds.X[:, 0].max()


# ---- crafted .npz models ----------------------------------------------------------
def model_bytes() -> bytes:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    y = np.array(["red", "green", "blue", "green"] * 10)
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(7, 5), epochs=2, random_state=0).fit(X, y)
    buf = io.BytesIO()
    clf.save(buf)
    return buf.getvalue()


GOOD = model_bytes()


def entries() -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(GOOD), allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def config() -> dict:
    return json.loads(str(entries()["config"]))


def npz(**changes) -> bytes:
    """The good model with some entries replaced (arrays) or dropped (None)."""
    members = entries()
    for key, value in changes.items():
        if value is None:
            members.pop(key)
        else:
            members[key] = value
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for key, value in members.items():
            z.writestr(key + ".npy", value if isinstance(value, bytes) else npy(value))
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def with_config(change) -> bytes:
    cfg = config()
    change(cfg)
    return npz(config=np.array(json.dumps(cfg) if not isinstance(cfg, str) else cfg))


def raw_config(text: str) -> bytes:
    return npz(config=np.array(text))


def npy_header(descr: str, shape: tuple) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def declares_a_billion_parameters() -> bytes:
    """A 1 KB file whose params header declares 10**9 float32 values (4 GB)."""
    def big(cfg):
        cfg["network"].update(n_features=99_999, hidden_layer_sizes=[], n_classes=10_000)
    cfg = config()
    big(cfg)
    return npz(config=np.array(json.dumps(cfg)),
               params=npy_header("<f4", (10**9,)) + b"\x00" * 64)


def zip_bomb() -> bytes:
    """params: 20 million float32 zeros (80 MB) deflated to ~80 KB, config to match."""
    cfg = config()
    cfg["network"].update(n_features=4470, hidden_layer_sizes=[4470], n_classes=3)
    n = Network.count_parameters((4470, 4470, 3))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for key, value in entries().items():
            if key == "config":
                value = np.array(json.dumps(cfg))
            if key == "params":
                with z.open("params.npy", "w") as member:
                    member.write(npy_header("<f4", (n,)))
                    zeros = bytes(2**22)
                    left = 4 * n
                    while left:
                        member.write(zeros[:min(left, len(zeros))])
                        left -= min(left, len(zeros))
                continue
            z.writestr(key + ".npy", npy(value))
    return buf.getvalue()


def duplicate_member() -> bytes:
    buf = io.BytesIO(GOOD)
    with zipfile.ZipFile(buf, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("params.npy", npy(np.zeros(3, np.float32)))
    return buf.getvalue()


def npy_version_3() -> bytes:
    data = bytearray(npy(entries()["params"]))
    data[6] = 3
    return npz(params=bytes(data))


def huge_config_text() -> bytes:
    """A config entry declared as 50 million characters (200 MB) in a tiny file."""
    return npz(config=npy_header("<U50000000", ()) + b"\x00" * 16)


NESTED = '{"network": {}, "meta": ' + "[" * 100_000 + "]" * 100_000 + "}"

NPZ_CORPUS = [
    # (id, bytes, regex of the message)
    ("nested-json", raw_config(NESTED), r"invalid configuration: the JSON nests deeper than 32"),
    ("meta-is-a-list", with_config(lambda c: c.update(meta=[])),
     r"invalid configuration: 'meta' must be a JSON object, got list"),
    ("config-is-a-list", raw_config("[1, 2]"),
     r"invalid configuration: it must be a JSON object, got list"),
    ("hidden-sizes-an-int", with_config(lambda c: c["network"].update(hidden_layer_sizes=7)),
     r"invalid configuration: hidden_layer_sizes must be a list of up to 1000 integers, got 7"),
    ("hidden-size-a-string", with_config(lambda c: c["network"].update(
        hidden_layer_sizes=["7", 5])), r"a hidden layer size must be an integer from 1"),
    ("n-features-bool", with_config(lambda c: c["network"].update(n_features=True)),
     r"n_features must be an integer from 1 to 2147483647, got True"),
    ("n-features-5000-digits", raw_config('{"network": {"n_features": ' + "9" * 5000 + "}}"),
     r"invalid configuration: Exceeds the limit"),
    ("activation-unknown", with_config(lambda c: c["network"].update(activation="evil")),
     r"activation must be one of \['identity', 'leaky_relu', 'relu', 'sigmoid', 'tanh'\], "
     r"got evil"),
    ("dtype-float16-config", with_config(lambda c: c["network"].update(dtype="float16")),
     r"dtype must be one of \['float32', 'float64'\], got float16"),
    ("n-iter-1e400", raw_config(json.dumps(config()).replace('"n_iter_": 2', '"n_iter_": 1e400')),
     r"invalid configuration: the number 1e400 is too large"),
    ("nan-literal", raw_config(json.dumps(config()).replace('"n_iter_": 2', '"n_iter_": NaN')),
     r"invalid configuration: NaN is not a number JSON allows"),
    ("declares-550MiB-network", with_config(lambda c: c["network"].update(
        n_features=12_000, hidden_layer_sizes=[12_000])),
     r"params does not fit: the configuration describes 144,048,003 parameters \(layers "
     r"\[12000, 12000, 3\]\) but the file holds 107"),
    ("huge-declared-shape", declares_a_billion_parameters(),
     r"the entry 'params' declares \(1000000000,\) values of float32 \(4,000,000,000 bytes\) "
     r"but holds 64 bytes"),
    ("zip-bomb-member", zip_bomb(),
     r"declares \d\d,\d{3},\d{3} bytes of entries in a file of [\d,]+ bytes \(more than 16 times "
     r"its size: a zip bomb or a damaged file\); refused unread"),
    ("huge-config-text", huge_config_text(),
     r"config must be a text of up to 4,000,000 characters, got dtype <U50000000"),
    ("params-complex128", npz(params=np.ones(107, np.complex128)),
     r"params must be a 1-D float array \(float32 or float64\), got shape \(107,\) dtype "
     r"complex128"),
    ("params-float16", npz(params=np.ones(107, np.float16)),
     r"params must be a 1-D float array \(float32 or float64\), got shape \(107,\) dtype "
     r"float16"),
    ("params-longdouble", npz(params=np.ones(107, np.longdouble)), r"params must be a 1-D float"),
    ("params-2d", npz(params=np.ones((107, 1), np.float32)),
     r"params must be a 1-D float array .* got shape \(107, 1\)"),
    ("params-pickled-objects", npz(params=np.array([{"evil": 1}] * 107, dtype=object)),
     r"the entry 'params' is an object array \(it would need pickle, which is never loaded\)"),
    ("classes-pickled-objects", npz(classes=np.array(["a", 1, None], dtype=object)),
     r"the entry 'classes' is an object array"),
    ("classes-complex", npz(classes=np.ones(3, np.complex64)),
     r"classes must be a 1-D array of numbers or texts"),
    ("classes-wrong-count", npz(classes=np.array(["a", "b"])),
     r"classes has 2 class labels for a network with 3 outputs"),
    ("format-not-text", npz(nn_core_format=np.array(1)),
     r"nn_core_format must be a text of up to 64 characters, got dtype int64"),
    ("version-a-float", npz(format_version=np.array(1.0)), r"format_version must be an integer"),
    ("npy-version-3", npy_version_3(), r"unsupported \.npy format version \(3, 0\)"),
    ("params-truncated-member", npz(params=npy(entries()["params"])[:-8]),
     r"the entry 'params' declares \(107,\) values of float32 \(428 bytes\) but holds 420 bytes"),
    ("duplicate-member", duplicate_member(), r"has the entry 'params' twice"),
    ("nan-weights", npz(params=np.full(107, np.nan, np.float32)), r"the weights contain NaN"),
    ("truncated-zip", GOOD[: len(GOOD) // 2], r"not a readable \.npz archive"),
    ("empty-file", b"", r"not a readable \.npz archive"),
    ("single-npy", npy(np.ones(3)), r"holds a single array, not an nn_core model archive"),
    ("pickled-npy", npy(np.array([{"a": 1}], dtype=object)),
     r"is a single pickled \.npy array, not a readable \.npz archive"),
]


@pytest.mark.parametrize("data,message", [c[1:] for c in NPZ_CORPUS],
                         ids=[c[0] for c in NPZ_CORPUS])
def test_npz_corpus(data, message, tmp_path):
    for attempt in ("load_network", "estimator"):
        if attempt == "load_network":
            out, seconds, peak = measure(load_network, io.BytesIO(data))
        else:
            path = tmp_path / "model.npz"
            path.write_bytes(data)
            out, seconds, peak = measure(NeuralNetworkClassifier.load, path)
        assert type(out) is ValueError, repr(out)
        assert re.search(message, str(out)), str(out)
        assert len(str(out)) < 600
        assert seconds < 2.0
        # never more than a small multiple of the file's real size
        assert peak < 2 * MB + 8 * len(data), (peak, len(data))


def test_crafted_npz_memory_numbers():
    """The numbers the issue quotes: a ~2 KB file used to allocate ~550 MiB."""
    for name, data in (("declares-550MiB-network", NPZ_CORPUS[11][1]),
                       ("zip-bomb-member", zip_bomb())):
        out, seconds, peak = measure(load_network, io.BytesIO(data))
        print(f"{name}: {len(data):,} bytes, {seconds * 1000:.1f} ms, "
              f"tracemalloc peak {peak / 1024:.0f} KiB")
        assert isinstance(out, ValueError) and peak < 2 * MB


BAD_ESTIMATOR_META = [
    ("params-a-list", lambda m: m.update(params=[]), r"'params' must be a JSON object, got list"),
    ("learning-rate-text", lambda m: m["params"].update(learning_rate="fast"),
     r"the saved hyper-parameters are invalid: learning_rate must be > 0"),
    ("optimizer-unhashable", lambda m: m["params"].update(optimizer=["adam"]),
     r"the saved hyper-parameters are invalid"),
    ("random-state-negative", lambda m: m["params"].update(random_state=-1),
     r"random_state must be a non-negative int"),
    ("n-iter-negative", lambda m: m.update(n_iter_=-3), r"n_iter_ must be a non-negative integer"),
    ("n-iter-text", lambda m: m.update(n_iter_="2"), r"n_iter_ must be a non-negative integer"),
    ("loss-curve-texts", lambda m: m.update(loss_curve_=["x"]),
     r"loss_curve_ must be a list of numbers"),
    ("loss-curve-nested", lambda m: m.update(loss_curve_=[[1.0]]),
     r"loss_curve_ must be a list of numbers"),
    ("validation-scores-object", lambda m: m.update(validation_scores_={"a": 1}),
     r"validation_scores_ must be a list of numbers"),
    ("status-object", lambda m: m.update(status_={"x": 1}), r"status_ must be a short text"),
]


@pytest.mark.parametrize("change,message", [c[1:] for c in BAD_ESTIMATOR_META],
                         ids=[c[0] for c in BAD_ESTIMATOR_META])
def test_estimator_load_refuses_bad_metadata(change, message):
    data = with_config(lambda c: change(c["meta"]))
    load_network(io.BytesIO(data))  # a valid network: only the estimator's part is wrong
    with pytest.raises(ValueError, match=message):
        NeuralNetworkClassifier.load(io.BytesIO(data))


def test_good_model_still_loads_from_a_big_endian_archive():
    e = entries()
    data = npz(params=e["params"].astype(">f4"), classes=e["classes"].astype(">U5"))
    clf = NeuralNetworkClassifier.load(io.BytesIO(data))
    ref = NeuralNetworkClassifier.load(io.BytesIO(GOOD))
    X = np.random.default_rng(1).standard_normal((5, 6))
    np.testing.assert_array_equal(clf.predict_proba(X), ref.predict_proba(X))
    assert clf.classes_.tolist() == ["blue", "green", "red"]


def test_compressed_archive_loads():
    e = entries()
    buf = io.BytesIO()
    np.savez_compressed(buf, **e)
    clf = NeuralNetworkClassifier.load(io.BytesIO(buf.getvalue()))
    assert clf.n_iter_ == 2


# ---- operator settings ------------------------------------------------------------
BAD_SETTINGS = [
    ({"NNPG_MAX_LAYERS": "0"}, r"NNPG_MAX_LAYERS must be >= 1 \(the Hidden layers slider "
                               r"needs a range, 0 to at least 1\), got 0"),
    ({"NNPG_MAX_UNITS": "1"}, r"NNPG_MAX_UNITS must be >= 2 \(the Neurons sliders need a "
                              r"range, 1 to at least 2\), got 1"),
    ({"NNPG_MAX_PARAMS": "10"}, r"NNPG_MAX_PARAMS must be >= 1000"),
    ({"NNPG_MAX_SAMPLES": "5"}, r"NNPG_MAX_SAMPLES must be >= 10"),
    ({"NNPG_MAX_EPOCHS": "0"}, r"NNPG_MAX_EPOCHS must be >= 1, got 0"),
    ({"NNPG_MAX_JOBS": "1_000"}, r"NNPG_MAX_JOBS must be an integer \(digits 0-9\), got "
                                 r"'1_000'"),
    ({"NNPG_MAX_JOBS": "٣"}, r"NNPG_MAX_JOBS must be an integer \(digits 0-9\)"),
    ({"NNPG_MAX_JOBS": "100000"}, r"NNPG_MAX_JOBS must be <= 1024, got 100000"),
    ({"NNPG_MAX_UPLOAD_MB": "1e3"}, r"NNPG_MAX_UPLOAD_MB must be an integer"),
    ({"NNPG_MAX_ACTIVE_PER_USER": "5", "NNPG_MAX_ACTIVE_PER_ADDRESS": "2"},
     r"NNPG_MAX_ACTIVE_PER_ADDRESS \(2\) must be >= NNPG_MAX_ACTIVE_PER_USER \(5\)"),
    ({"NNPG_CLIENT_IP_HEADER": "X-Real-IP: 1.2.3.4"},
     r"NNPG_CLIENT_IP_HEADER must be an HTTP header name"),
]


@pytest.mark.parametrize("env,message", BAD_SETTINGS, ids=[m[:30] for _, m in BAD_SETTINGS])
def test_bad_operator_settings_are_refused(monkeypatch, env, message):
    from playground.settings import load_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        load_settings()


@pytest.mark.slow
def test_smallest_allowed_settings_keep_every_page_working(monkeypatch):
    """The minimums keep every page drawable and a run trainable (AppTest)."""
    import streamlit as st

    from playground.settings import load_settings
    from tests.test_app import PlaygroundTest, train

    for key, value in {"NNPG_MAX_LAYERS": "1", "NNPG_MAX_UNITS": "2", "NNPG_MAX_EPOCHS": "1",
                       "NNPG_MAX_PARAMS": "1000", "NNPG_MAX_SAMPLES": "10"}.items():
        monkeypatch.setenv(key, value)
    s = load_settings()
    assert (s.max_layers, s.max_units, s.max_epochs) == (1, 2, 1)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = PlaygroundTest(str(ROOT / "app.py"), default_timeout=60)
        at.query_params["dataset"] = "Iris"
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert at.slider(key="n_layers").max == 1
        train(at)
        assert at.success, [e.value for e in at.error]
        for page in ("views/data.py", "views/compare.py"):
            at.switch_page(page).run()
            assert not at.exception and not at.error, [e.value for e in at.error]
    finally:
        st.cache_resource.clear()
