"""Tests of reading marketplace exports (`valuation.loading`): headers, encodings, formats, rejects."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valuation.loading import (
    CsvLines,
    ExportError,
    canonical_headers,
    export_files,
    export_name,
    load_exports,
    load_listings,
    parse_listings,
    read_export,
    read_export_chunks,
    rejects_path,
    unread_columns,
    write_rejects,
)
from valuation.schema import BY_NAME, FEATURES, TARGET

MARKET_HEADERS = ["粉丝数量", "有无违规", "直播权限", "认证状态", "类目", "成交价"]
ENGLISH_HEADERS = ["fans", "violations", "live_permission", "verified", "category", "price"]
GOOD_ROWS = [
    ["13.13W", "有违规", "未开通", "已认证", "自媒体", "¥1,200"],
    ["52,000", "无违规", "已开通", "未认证", "美食", "3500元"],
    ["800", "无违规", "未开通", "未认证", "搞笑", "1.2万"],
]
EXPECTED = pd.DataFrame(
    {
        "fans": [131300, 52000, 800],
        "violations": [True, False, False],
        "live_permission": [False, True, False],
        "verified": [True, False, False],
        "category": pd.Series(["自媒体", "美食", "搞笑"], dtype=object),
        "price": [1200.0, 3500.0, 12000.0],
    }
)


def write_csv(path: Path, headers: list[str], rows: list[list[str]], encoding="utf-8") -> Path:
    lines = [",".join(headers), *(",".join(_quoted(cell) for cell in row) for row in rows)]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _quoted(cell: str) -> str:
    return f'"{cell}"' if "," in cell else cell


def assert_expected(listings: pd.DataFrame, expected: pd.DataFrame = EXPECTED) -> None:
    pd.testing.assert_frame_equal(
        listings[list(expected.columns)].reset_index(drop=True), expected, check_dtype=True
    )


@pytest.mark.parametrize(
    "category_header, price_header", [("类目", "成交价"), ("分类", "价格"), ("类目", "售价")]
)
def test_chinese_headers_and_spellings(tmp_path, category_header, price_header):
    headers = [*MARKET_HEADERS[:4], category_header, price_header]
    loaded = load_listings(write_csv(tmp_path / "sales.csv", headers, GOOD_ROWS), True)
    assert_expected(loaded.listings)
    assert loaded.rejects.empty
    assert loaded.total == 3


def test_english_headers_in_any_case(tmp_path):
    headers = ["Fans", "VIOLATIONS", "Live Permission", "verified", "category", "price"]
    rows = [
        ["131300", "yes", "no", "true", "自媒体", "1200"],
        ["52000", "0", "1", "f", "美食", "3500"],
    ]
    loaded = load_listings(write_csv(tmp_path / "sales.csv", headers, rows), True)
    assert_expected(loaded.listings, EXPECTED.iloc[:2])


def write_typed(path: Path, fans: tuple[str, list], price_header: str = "成交价") -> Path:
    """A Parquet export of EXPECTED's three listings, typed: fans as (header, values)."""
    header, values = fans
    pd.DataFrame(
        {
            header: values,
            "有无违规": [True, False, False],
            "直播权限": [False, True, False],
            "认证状态": [True, False, False],
            "类目": ["自媒体", "美食", "搞笑"],
            price_header: [1200.0, 3500.0, 12000.0],
        }
    ).to_parquet(path, index=False)
    return path


def test_parquet_with_typed_columns(tmp_path):
    fans = ("粉丝数量", np.array([131300, -5, 800], dtype="int64"))
    loaded = load_listings(write_typed(tmp_path / "sales.parquet", fans), require_price=True)
    assert_expected(loaded.listings, EXPECTED.iloc[[0, 2]].reset_index(drop=True))
    # Parquet has no header line: its rows count from 1, so the second row is line 2.
    assert loaded.rejects["line"].tolist() == [2]
    assert loaded.rejects["column"].tolist() == ["粉丝数量"]
    assert "negative" in loaded.rejects["reason"].iloc[0]
    assert loaded.listings.index.tolist() == [0, 2]


def test_gb18030_csv_as_excel_writes_it(tmp_path):
    path = write_csv(tmp_path / "sales.csv", MARKET_HEADERS, GOOD_ROWS, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the file really is not UTF-8
    loaded = load_listings(path, require_price=True)
    assert_expected(loaded.listings)
    assert list(loaded.raw.columns) == MARKET_HEADERS


def test_utf8_with_bom(tmp_path):
    path = write_csv(tmp_path / "sales.csv", MARKET_HEADERS, GOOD_ROWS, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    loaded = load_listings(path, require_price=True)
    assert_expected(loaded.listings)
    assert loaded.raw.columns[0] == "粉丝数量"  # the BOM is not part of the first header


def write_workbook(path: Path, rows: list[list]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def write_xls(path: Path, rows: list[list]) -> Path:
    """An Excel 97-2003 workbook (xlwt), a date cell formatted as a date, as Excel saves one."""
    import xlwt

    book = xlwt.Workbook()
    sheet, day = book.add_sheet("成交记录"), xlwt.easyxf(num_format_str="YYYY-MM-DD hh:mm")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, dt.datetime):
                sheet.write(r, c, value, day)
            elif value is not None:
                sheet.write(r, c, value)
    book.save(str(path))
    return path


WORKBOOK_WRITERS = [(write_workbook, ".xlsx"), (write_xls, ".xls")]


@pytest.mark.parametrize(("write", "suffix"), WORKBOOK_WRITERS)
def test_an_excel_workbook_reads_as_its_csv_would(tmp_path, write, suffix):
    """Cells typed as Excel types them (numbers, dates, booleans) or as text in the marketplace's
    spellings; a blank row; rejects numbered by the workbook's own rows. As .xlsx and as Excel
    97-2003's .xls."""
    rows = [
        [*MARKET_HEADERS, "成交日期"],
        [131300, "有违规", "未开通", "已认证", "自媒体", 1200.0, dt.datetime(2025, 3, 1)],
        [],  # Excel row 3: blank, skipped as a CSV's blank line is
        ["52,000", "无违规", True, False, "美食", "3500元", "2025/3/2"],
        [52000.5, "无违规", "已开通", "未认证", "美食", "面议", "2025-03-03"],
        [800.0, "无违规", "未开通", 0, "搞笑", "1.2万", dt.datetime(2025, 3, 4, 14, 5)],
    ]
    loaded = load_listings(write(tmp_path / f"sales{suffix}", rows), require_price=True)
    assert_expected(loaded.listings)
    assert loaded.listings["sold_at"].tolist() == [
        pd.Timestamp(day) for day in ("2025-03-01", "2025-03-02", "2025-03-04")
    ]
    assert loaded.rejects["line"].tolist() == [5]  # Excel's row: header 1, blank 3
    assert loaded.rejects["column"].tolist() == ["粉丝数量, 成交价"]
    assert loaded.raw["粉丝数量"].tolist() == ["131300", "52,000", "52000.5", "800"]
    chunks = list(read_export_chunks(tmp_path / f"sales{suffix}", 2))
    assert [len(raw) for raw, _ in chunks] == [2, 2]
    assert [lines(np.arange(len(raw))).tolist() for raw, lines in chunks] == [[2, 4], [5, 6]]
    pd.testing.assert_frame_equal(
        pd.concat([raw for raw, _ in chunks], ignore_index=True), loaded.raw
    )


def test_a_workbook_that_cannot_be_read_is_refused_by_name(tmp_path):
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04")
    with pytest.raises(ExportError, match="not a readable Excel workbook"):
        load_listings(broken, require_price=True)
    with pytest.raises(ExportError, match="first sheet holds no table"):
        load_listings(write_workbook(tmp_path / "empty.xlsx", []), require_price=True)
    repeated = write_workbook(tmp_path / "repeated.xlsx", [[*MARKET_HEADERS, "成交价"]])
    with pytest.raises(ExportError, match="成交价 appear more than once"):
        load_listings(repeated, require_price=True)
    header_only = write_workbook(tmp_path / "header.xlsx", [MARKET_HEADERS])
    assert len(load_listings(header_only, require_price=True).listings) == 0


def test_a_workbook_is_read_by_what_it_holds_not_by_its_suffix(tmp_path):
    """Back offices name an .xlsx `.xls`, and save web pages or text as `.xls`."""
    rows = [MARKET_HEADERS, *GOOD_ROWS]
    renamed = write_workbook(tmp_path / "sales.xlsx", rows).rename(tmp_path / "renamed.xls")
    assert_expected(load_listings(renamed, require_price=True).listings)
    page = tmp_path / "page.xls"
    page.write_text("<html><table><tr><td>粉丝数量</td></tr></table></html>", encoding="utf-8")
    with pytest.raises(ExportError, match="not an Excel workbook .*save it as .xlsx or CSV"):
        load_listings(page, require_price=True)
    broken = tmp_path / "broken.xls"
    broken.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(ExportError, match="not a readable Excel 97-2003 workbook"):
        load_listings(broken, require_price=True)
    with pytest.raises(ExportError, match="first sheet holds no table"):
        load_listings(write_xls(tmp_path / "empty.xls", []), require_price=True)


@pytest.mark.parametrize(("write", "suffix"), WORKBOOK_WRITERS)
def test_a_title_above_a_workbook_s_table_is_not_its_header(tmp_path, write, suffix):
    rows = [
        ["快手账号成交记录"],
        ["导出时间: 2026-12-01"],
        [],
        MARKET_HEADERS,
        *GOOD_ROWS,
        ["面议"],
    ]
    loaded = load_listings(write(tmp_path / f"titled{suffix}", rows), require_price=True)
    assert_expected(loaded.listings)
    assert list(loaded.raw.columns) == MARKET_HEADERS
    assert loaded.rejects["line"].tolist() == [8]  # a row of one value under the header is a row


@pytest.mark.parametrize(("write", "suffix"), WORKBOOK_WRITERS)
@pytest.mark.parametrize(
    "above",
    [
        [["快手账号成交记录", "导出时间: 2026-12-01"]],  # a title beside the export time
        [["账号信息", "", "", "", "", "成交信息"]],  # a row grouping the columns
    ],
)
def test_a_workbook_s_header_is_its_first_row_naming_two_fields(tmp_path, write, suffix, above):
    """As a CSV's: a row of two values above the header that names no field is not it."""
    rows = [*above, MARKET_HEADERS, *GOOD_ROWS]
    loaded = load_listings(write(tmp_path / f"grouped{suffix}", rows), require_price=True)
    assert_expected(loaded.listings)
    assert list(loaded.raw.columns) == MARKET_HEADERS
    assert loaded.rejects.empty
    # with no row naming two fields, the first row of two values is the header, as before, and
    # every row under it is the table's, one of a single value too
    plain = [["a", "b"], ["x"], ["1", "2"]]
    table = read_export(write(tmp_path / f"plain{suffix}", plain))
    assert list(table.columns) == ["a", "b"]
    assert table.to_numpy().tolist() == [["x", ""], ["1", "2"]]


@pytest.mark.parametrize("chunk_rows", [None, 1, 2])
def test_a_title_above_a_csv_s_table_is_skipped_as_a_workbook_s(tmp_path, chunk_rows):
    """A sheet with a title row saved as CSV: the title alone, or followed by the empty cells
    the spreadsheet writes for the table's other columns; an export time; blank lines. The
    header is the first line of two values or more, and rejects keep the file's own lines."""
    bad = ["约10万", "无违规", "已开通", "未认证", "美食", "3500元"]
    lines = [
        "快手账号成交记录,,,,,",  # 1
        "导出时间: 2026-12-01",  # 2
        "",  # 3
        '"备注: 价格单位\n为元",,,',  # 4-5: a quoted title over two lines
        ",".join(MARKET_HEADERS),  # 6
        *(",".join(map(_quoted, row)) for row in GOOD_ROWS[:2]),  # 7-8
        ",".join(bad),  # 9
        ",".join(map(_quoted, GOOD_ROWS[2])),  # 10
        "面议",  # 11: a row of one value under the header is a row
    ]
    path = tmp_path / "titled.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    chunks = list(read_export_chunks(path, chunk_rows))
    parsed = [parse_listings(raw, True, numbering) for raw, numbering in chunks]
    assert all(list(raw.columns) == MARKET_HEADERS for raw, _ in chunks)
    assert_expected(pd.concat([p.listings for p in parsed]))
    assert [line for p in parsed for line in p.rejects["line"]] == [9, 11]


def test_a_csv_read_as_one_column_says_what_it_read(tmp_path):
    """Tab-separated values saved as .csv: one column, whose name is the whole header line."""
    path = tmp_path / "tabs.csv"
    lines = ["\t".join(MARKET_HEADERS), *("\t".join(row) for row in GOOD_ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ExportError, match="one column: are its values separated by commas"):
        load_listings(path, require_price=True)


def test_a_csv_of_title_lines_only_reads_its_first_as_the_header(tmp_path):
    path = tmp_path / "titles.csv"
    path.write_text("".join(f"第{i}行说明\n" for i in range(30)), encoding="utf-8")
    with pytest.raises(ExportError, match="the header read: '第0行说明' \\(one column"):
        load_listings(path, require_price=True)


def test_empty_cells_past_a_csv_s_header_are_no_repeated_column(tmp_path):
    rows = [[*MARKET_HEADERS, "", ""], *([*row, "", ""] for row in GOOD_ROWS)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(",".join(map(_quoted, row)) for row in rows) + "\n")
    assert_expected(load_listings(path, require_price=True).listings)


def test_rejects_name_line_column_and_reason(tmp_path):
    rows = [
        GOOD_ROWS[0],
        ["约10万", "无违规", "已开通", "未认证", "美食", "3500元"],
        GOOD_ROWS[1],
        ["800", "不详", "未开通", "未认证", "搞笑", "面议"],
        GOOD_ROWS[2],
    ]
    headers = [" 粉丝数量", *MARKET_HEADERS[1:]]  # a stray space, as hand-edited exports have
    loaded = load_listings(write_csv(tmp_path / "sales.csv", headers, rows), True)

    rejects = loaded.rejects
    # The header is line 1, so the second and fourth data rows are lines 3 and 5.
    assert rejects["line"].tolist() == [3, 5]
    assert rejects["column"].tolist() == [" 粉丝数量", "有无违规, 成交价"]
    fans_reason = rejects["reason"].iloc[0]
    assert "fans" in fans_reason and "约10万" in fans_reason
    both = rejects["reason"].iloc[1].split("; ")
    assert len(both) == 2
    assert "violations" in both[0] and "不详" in both[0]
    assert "price" in both[1] and "面议" in both[1]
    # The original cells travel with the reject, so a person can fix the row.
    assert rejects[" 粉丝数量"].tolist() == ["约10万", "800"]
    assert rejects["成交价"].tolist() == ["3500元", "面议"]
    assert loaded.listings.index.tolist() == [0, 2, 4]
    assert len(loaded.listings) + len(rejects) == loaded.total == 5
    assert loaded.reject_share == pytest.approx(2 / 5)


NOTED_HEADERS = [*MARKET_HEADERS, "备注"]  # a seller's note: free text, not ours to read
BAD_ROW = ["约10万", "无违规", "已开通", "未认证", "美食", "3500元"]


def rejected_lines(path: Path, chunk_rows: int | None) -> list[int]:
    """The reject lines of the export read whole (None) or in chunks of `chunk_rows` rows."""
    if chunk_rows is None:
        return load_listings(path, require_price=True).rejects["line"].tolist()
    return [
        line
        for raw, lines in read_export_chunks(path, chunk_rows)
        for line in parse_listings(raw, True, lines).rejects["line"]
    ]


@pytest.mark.parametrize("chunk_rows", [None, 1, 2, 1_000])
def test_reject_lines_count_line_breaks_in_values_and_blank_lines(tmp_path, chunk_rows):
    def row(cells, note):
        return ",".join([*map(_quoted, cells), '"' + note.replace('"', '""') + '"'])

    text = "\n".join(
        [
            ",".join(NOTED_HEADERS),  # 1
            row(GOOD_ROWS[1], "pasted\nover two lines"),  # 2-3
            row(BAD_ROW, "bad"),  # 4
            "",  # 5: skipped as blank
            "   ",  # 6: skipped as blank
            row(GOOD_ROWS[2], 'a "quoted" word,\r\nthen a Windows break'),  # 7-8
            row(["800", "不详", "未开通", "未认证", "搞笑", "面议"], "bad"),  # 9
            row(GOOD_ROWS[1], "one\n\ntwo"),  # 10-12
            row(["52,000", "无违规", "已开通", "未认证", "", "3500元"], "no category"),  # 13
        ]
    )
    path = tmp_path / "sales.csv"
    path.write_text(text + "\n", encoding="utf-8-sig")  # with a BOM, as Excel saves it
    assert rejected_lines(path, chunk_rows) == [4, 9, 13]


@st.composite
def noted_export(draw):
    """An export's text, its rows' notes holding line breaks, quotes and commas, with blank
    lines between rows; and the line each bad row starts on, counted as it was written."""
    lines, bad_lines = [",".join(NOTED_HEADERS)], []
    pieces = st.sampled_from(["a", "\n", "\r\n", '"', ",", " ", "美"])
    note = st.lists(pieces, max_size=8).map("".join)
    for _ in range(draw(st.integers(0, 15))):
        lines.extend([""] * draw(st.integers(0, 2)))
        bad = draw(st.booleans())
        if bad:
            bad_lines.append(sum(line.count("\n") + 1 for line in lines) + 1)
        text = draw(note).replace('"', '""')
        cells = map(_quoted, BAD_ROW if bad else GOOD_ROWS[1])
        lines.append(",".join([*cells, f'"{text}"']))
    return "\n".join(lines) + "\n", bad_lines


@settings(max_examples=60, deadline=None)
@given(noted_export(), st.sampled_from([None, 1, 3]))
def test_each_reject_is_numbered_by_the_line_it_starts_on(tmp_path_factory, drawn, chunk_rows):
    text, bad_lines = drawn
    path = tmp_path_factory.mktemp("noted") / "sales.csv"
    path.write_bytes(text.encode("utf-8"))
    assert rejected_lines(path, chunk_rows) == bad_lines


def test_line_numbers_past_what_the_csv_module_reads_go_on_one_a_row(tmp_path, caplog):
    # Never seen (pandas and the csv module split rows alike), but a line number must not stop
    # a whole file's pricing: past the csv module's end, one line a row, and the log says so.
    path = write_csv(tmp_path / "sales.csv", MARKET_HEADERS, GOOD_ROWS[:2])
    lines = CsvLines(path, "utf-8")
    assert lines.of(np.array([1, 4, 6])).tolist() == [3, 6, 8]
    assert lines.of(np.array([7, 9])).tolist() == [9, 11]
    lines.close()
    assert caplog.text.count("numbered one line a row") == 1  # said once


def test_a_loaded_export_numbers_any_of_its_rows_after_the_load(tmp_path):
    """Training reports some rows after the load (the price typos it screens): the listings'
    lines are read again from the file's top for a row before the last one numbered."""
    noted = [*GOOD_ROWS[0][:5], "¥1,200\n(急售)"]  # a price over two lines: unreadable
    rows = [GOOD_ROWS[0], noted, GOOD_ROWS[1], GOOD_ROWS[2], ["十万", *GOOD_ROWS[2][1:]]]
    path = write_csv(tmp_path / "sales.csv", MARKET_HEADERS, rows)
    loaded = load_listings(path, require_price=True)
    assert loaded.rejects["line"].tolist() == [3, 7]
    assert loaded.listings.index.tolist() == [0, 2, 3]
    assert loaded.line_of(np.array([2, 3])).tolist() == [5, 6]
    assert loaded.line_of(np.array([0])).tolist() == [2]  # an earlier row: read again
    assert loaded.line_of(np.array([0, 2, 3])).tolist() == [2, 5, 6]


GOOD = {
    "fans": st.one_of(
        st.sampled_from(["13.13W", "5.2万", "131,300", "3.5k", "1.2亿", "0"]),
        st.integers(0, 10**9).map(str),
    ),
    "violations": st.sampled_from(["有违规", "无违规", "没有违规", "yes", "no", "1", "0"]),
    "live_permission": st.sampled_from(["已开通", "未开通", "开通", "无权限", "true", "false"]),
    "verified": st.sampled_from(["已认证", "未认证", "认证", "Y", "N"]),
    "category": st.sampled_from(["自媒体", "美食", "游戏", "新类目"]),
    "price": st.sampled_from(["¥1,200", "1200元", "1.2万", "300", "RMB 88"]),
}
BAD = {
    "fans": st.sampled_from(["约10万", "十万", "-300", "n/a", "", "1.5"]),
    "violations": st.sampled_from(["不详", "maybe", "2", ""]),
    "live_permission": st.sampled_from(["待定", "2", ""]),
    "verified": st.sampled_from(["?", "审核中", ""]),
    "category": st.sampled_from(["", "   "]),
    "price": st.sampled_from(["面议", "0", "¥-500", "价格待议", ""]),
}


@st.composite
def export_rows(draw):
    """Rows of random good and bad cells, and for each row the fields that were bad."""
    rows, bad_fields = [], []
    for _ in range(draw(st.integers(0, 25))):
        bad = [name for name in ENGLISH_HEADERS if draw(st.booleans()) and draw(st.booleans())]
        rows.append([draw((BAD if name in bad else GOOD)[name]) for name in ENGLISH_HEADERS])
        bad_fields.append(bad)
    return rows, bad_fields


@settings(max_examples=60, deadline=None)
@given(export_rows())
def test_every_row_is_either_accepted_or_rejected(drawn):
    rows, bad_fields = drawn
    raw = pd.DataFrame(rows, columns=MARKET_HEADERS, dtype=object)
    loaded = parse_listings(raw, require_price=True, first_line=2)

    assert len(loaded.listings) + len(loaded.rejects) == loaded.total == len(rows)
    expected_lines = [i + 2 for i, bad in enumerate(bad_fields) if bad]
    assert loaded.rejects["line"].tolist() == expected_lines
    header = dict(zip(ENGLISH_HEADERS, MARKET_HEADERS))
    expected_columns = [", ".join(header[name] for name in bad) for bad in bad_fields if bad]
    assert loaded.rejects["column"].tolist() == expected_columns
    assert all(reason for reason in loaded.rejects["reason"])
    accepted = [i for i, bad in enumerate(bad_fields) if not bad]
    assert loaded.listings.index.tolist() == accepted


@pytest.mark.parametrize("dropped", range(6))
def test_missing_required_column_is_named(tmp_path, dropped):
    headers = [h for i, h in enumerate(MARKET_HEADERS) if i != dropped]
    rows = [[c for i, c in enumerate(row) if i != dropped] for row in GOOD_ROWS]
    path = write_csv(tmp_path / "sales.csv", headers, rows)
    field = [*FEATURES, TARGET][dropped]
    with pytest.raises(ExportError, match=f"missing column.*{field.name}"):
        load_listings(path, require_price=True)


def test_price_column_is_needed_only_for_training(tmp_path):
    path = write_csv(tmp_path / "listings.csv", MARKET_HEADERS[:5], [r[:5] for r in GOOD_ROWS])
    loaded = load_listings(path, require_price=False)
    assert "price" not in loaded.listings
    assert len(loaded.listings) == 3
    with pytest.raises(ExportError, match="price"):
        load_listings(path, require_price=True)


@pytest.mark.parametrize(
    "headers",
    [
        [*MARKET_HEADERS[:4], "类目", "分类", "成交价"],
        ["fans", *MARKET_HEADERS],
        [*MARKET_HEADERS, "价格"],
    ],
)
def test_two_headers_for_one_field_are_refused(headers):
    with pytest.raises(ExportError, match="both mean"):
        canonical_headers(headers, require_price=True)


def test_repeated_identical_header_is_refused(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text(
        "粉丝数量,有无违规,直播权限,认证状态,类目,成交价,成交价\n800,无违规,未开通,未认证,美食,100,200\n"
    )
    with pytest.raises(ExportError):
        load_listings(path, require_price=True)


def test_each_cell_is_read_on_its_own():
    raw = pd.DataFrame(
        {
            "fans": [True, 1],
            "violations": [False, False],
            "live_permission": [True, True],
            "verified": [False, False],
            "category": ["美食", "美食"],
        },
        dtype=object,
    )
    loaded = parse_listings(raw, require_price=False, first_line=1)
    assert loaded.rejects["line"].tolist() == [1]  # fans=True is no count of followers
    assert loaded.listings["fans"].tolist() == [1]


def test_unknown_suffix_missing_and_empty_files(tmp_path):
    numbers = tmp_path / "sales.numbers"  # Apple's spreadsheet
    numbers.write_bytes(b"PK\x03\x04")
    with pytest.raises(ExportError, match="unsupported file type '.numbers'; use CSV, Excel"):
        load_listings(numbers, require_price=True)
    with pytest.raises(ExportError, match="no such file"):
        load_listings(tmp_path / "absent.csv", require_price=True)
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_bytes(b"")
    with pytest.raises(ExportError, match="empty"):
        load_listings(empty_csv, require_price=True)
    empty_parquet = tmp_path / "empty.parquet"
    empty_parquet.write_bytes(b"")
    with pytest.raises(ExportError, match="Parquet"):
        load_listings(empty_parquet, require_price=True)


def test_rejects_are_written_next_to_the_output(tmp_path):
    output = tmp_path / "out" / "prices.parquet"
    assert rejects_path(output) == tmp_path / "out" / "prices.rejects.csv"
    assert rejects_path("prices.csv") == Path("prices.rejects.csv")

    rows = [GOOD_ROWS[0], ["800", "不详", "未开通", "未认证", "搞笑", "面议"]]
    loaded = load_listings(write_csv(tmp_path / "sales.csv", MARKET_HEADERS, rows), True)
    output.parent.mkdir()
    written = write_rejects(loaded.rejects, rejects_path(output))
    assert written == tmp_path / "out" / "prices.rejects.csv"
    assert written.read_bytes().startswith(b"\xef\xbb\xbf")  # spreadsheets read the headers
    back = pd.read_csv(written, encoding="utf-8-sig", dtype=str)
    assert list(back.columns) == ["line", "column", "reason", *MARKET_HEADERS]
    assert back["line"].tolist() == ["3"]
    assert back["有无违规"].tolist() == ["不详"]


def test_unknown_columns_are_kept_in_raw(tmp_path):
    headers = ["备注", *MARKET_HEADERS, "seller"]
    rows = [["急售", *GOOD_ROWS[0], "alice"], ["", *GOOD_ROWS[1], "bob"]]
    loaded = load_listings(write_csv(tmp_path / "sales.csv", headers, rows), True)
    assert loaded.raw["备注"].tolist() == ["急售", ""]
    assert loaded.raw["seller"].tolist() == ["alice", "bob"]
    assert "备注" not in loaded.listings and "seller" not in loaded.listings
    assert_expected(loaded.listings, EXPECTED.iloc[:2])


def test_optional_id_and_date_are_parsed(tmp_path):
    headers = ["账号ID", *MARKET_HEADERS, "成交日期"]
    rows = [["KS1", *GOOD_ROWS[0], "2025-03-01"], ["KS2", *GOOD_ROWS[1], "2025年04月02日"]]
    loaded = load_listings(write_csv(tmp_path / "sales.csv", headers, rows), True)
    assert loaded.listings["listing_id"].tolist() == ["KS1", "KS2"]
    assert loaded.listings["sold_at"].tolist() == [
        pd.Timestamp("2025-03-01"),
        pd.Timestamp("2025-04-02"),
    ]


def test_sale_times_with_a_time_zone_are_read_as_the_day_written(tmp_path):
    """A database export: pandas writes tz-aware times with +08:00, PostgreSQL with +08."""
    sold = pd.Series(pd.to_datetime(["2025-03-01 23:30", "2025-04-02 08:00"])).dt.tz_localize(
        "Asia/Shanghai"
    )
    frame = pd.DataFrame([GOOD_ROWS[0], GOOD_ROWS[1]], columns=MARKET_HEADERS)
    frame["成交时间"] = sold
    frame.to_csv(tmp_path / "pandas.csv", index=False)
    frame["成交时间"] = ["2025-03-01 23:30:00+08", "2025-04-02 08:00:00.5+08"]
    frame.to_csv(tmp_path / "postgres.csv", index=False)
    for name in ("pandas.csv", "postgres.csv"):
        loaded = load_listings(tmp_path / name, True)
        assert loaded.rejects.empty, loaded.rejects
        assert loaded.listings["sold_at"].tolist() == [
            pd.Timestamp("2025-03-01"),
            pd.Timestamp("2025-04-02"),
        ]


@pytest.mark.parametrize(
    "fans_header, price_header",
    [
        ("粉丝数量(万)", "成交价（万元）"),
        ("粉丝数（万）", "成交价/万元"),
        ("粉丝量 (W)", "价格【单位：万元】"),
        ("Fans [w]", "sale_price (万)"),
    ],
)
def test_a_header_s_unit_is_written_after_its_bare_numbers(tmp_path, fans_header, price_header):
    """An export that gives its unit in the header (粉丝数量(万): 13.13) is read as the marketplace
    writes the value (13.13万); a value with a unit of its own keeps it, and a value that is no
    number is refused as written, on its line."""
    rows = [
        ["13.13", "有违规", "未开通", "已认证", "自媒体", "0.12"],
        ["5.2W", "无违规", "已开通", "未认证", "美食", "¥0.35"],  # its own unit: as written
        ["０.０８", "无违规", "未开通", "未认证", "搞笑", "1.2"],  # full width, as typed
        ["-1", "无违规", "未开通", "未认证", "搞笑", "abc"],
    ]
    headers = [fans_header, *MARKET_HEADERS[1:5], price_header]
    loaded = load_listings(write_csv(tmp_path / "sales.csv", headers, rows), True)
    assert loaded.listings["fans"].tolist() == [131300, 52000, 800]
    assert loaded.listings["price"].tolist() == [1200.0, 3500.0, 12000.0]
    [reject] = loaded.rejects.to_dict("records")
    assert reject["line"] == 5 and reject["column"] == f"{fans_header}, {price_header}"
    assert "'-1'" in reject["reason"] and "'abc'" in reject["reason"]  # as written, no unit added


def test_a_header_s_unit_applies_to_typed_numbers_and_yuan_changes_nothing(tmp_path):
    path = write_typed(
        tmp_path / "sales.parquet", ("粉丝数量/万", [13.13, 5.2, 0.08]), "成交价(元)"
    )
    loaded = load_listings(path, require_price=True)
    assert_expected(loaded.listings)


def test_a_note_on_a_date_s_or_an_id_s_header_is_read_as_that_field(tmp_path):
    """`成交时间(北京时间)` and `商品编号(平台)` are optional columns: refusing their note would
    leave them unread without a word (no split by time, no repeats found)."""
    headers = ["商品编号(平台)", *MARKET_HEADERS, "成交时间(北京时间)", "备注"]
    rows = [[f"KS{i}", *row, f"2026-11-0{i + 1} 14:22", "急售"] for i, row in enumerate(GOOD_ROWS)]
    loaded = load_listings(write_csv(tmp_path / "noted.csv", headers, rows), require_price=True)
    assert_expected(loaded.listings)
    assert loaded.listings["listing_id"].tolist() == ["KS0", "KS1", "KS2"]
    assert loaded.listings["sold_at"].tolist() == [pd.Timestamp(2026, 11, d) for d in (1, 2, 3)]
    # the columns no field reads are named, to be said by training
    assert unread_columns([tmp_path / "noted.csv"]) == ["备注"]


def test_unread_columns_are_named_once_across_files_and_blank_ones_are_none(tmp_path):
    first = write_csv(tmp_path / "a.csv", [*MARKET_HEADERS, "售出时刻", ""], [])
    second = write_csv(tmp_path / "b.csv", [*MARKET_HEADERS, "标题", "售出时刻"], [])
    assert unread_columns([first, second]) == ["售出时刻", "标题"]
    assert unread_columns([write_csv(tmp_path / "c.csv", MARKET_HEADERS, [])]) == []
    # a field's header with a part that is no unit, beside the field's own column, is not read
    beside = write_csv(tmp_path / "d.csv", [*MARKET_HEADERS, "价格(美元)"], [])
    assert unread_columns([beside]) == ["价格(美元)"]


def test_a_date_s_header_with_a_part_that_is_no_time_zone_is_not_read_and_said(tmp_path):
    """`交易时间(天)` (the days a trade took) is no sale date: left unread, named by training."""
    headers = [*MARKET_HEADERS, "交易时间(天)"]
    path = write_csv(tmp_path / "days.csv", headers, [[*row, "3"] for row in GOOD_ROWS])
    loaded = load_listings(path, require_price=True)
    assert_expected(loaded.listings)
    assert "sold_at" not in loaded.listings and loaded.rejects.empty
    assert unread_columns([path]) == ["交易时间(天)"]
    zoned = write_csv(tmp_path / "zoned.csv", [*MARKET_HEADERS, "成交日期(UTC+8)"], [])
    assert unread_columns([zoned]) == []


@pytest.mark.parametrize(
    "header, named",
    [("类目(一级)", "category"), ("成交价(美元)", "price"), ("直播权限(万)", "live_permission")],
)
def test_a_header_s_part_that_is_no_unit_is_refused_by_name(tmp_path, header, named):
    own = BY_NAME[named].marketplace_header
    headers = [header if h == own else h for h in MARKET_HEADERS]
    path = write_csv(tmp_path / "sales.csv", headers, GOOD_ROWS)
    with pytest.raises(
        ExportError, match=rf"column '{re.escape(header)}' names {named} .*rename it"
    ):
        load_listings(path, require_price=True)
    # beside the field's own column it is just another column, kept in raw
    loaded = load_listings(
        write_csv(tmp_path / "both.csv", [*MARKET_HEADERS, header], [[*r, "x"] for r in GOOD_ROWS]),
        True,
    )
    assert_expected(loaded.listings)
    assert loaded.raw[header].tolist() == ["x"] * 3


def test_exports_headed_in_other_common_words_are_read(tmp_path):
    headers = ["粉丝量", "是否违规", "是否开通直播", "是否认证", "账号类目", "成交金额", "交易日期"]
    rows = [
        [*row[:3], "是" if row[3] == "已认证" else "否", *row[4:], "2025-03-01"]
        for row in GOOD_ROWS
    ]
    loaded = load_listings(write_csv(tmp_path / "sales.csv", headers, rows), True)
    assert_expected(loaded.listings)
    assert (loaded.listings["sold_at"] == pd.Timestamp("2025-03-01")).all()


def test_a_sale_written_twice_is_trained_on_once_and_listed_with_both_lines(tmp_path):
    """An export appended to another, or two of overlapping months, repeat sales: the same id,
    date, price and details. Training takes each once; the repeats are listed by line, with the
    line they repeat, numbered as rejects are (a note's line breaks counted)."""
    headers = ["账号ID", *MARKET_HEADERS, "成交日期", "备注"]

    def row(listing_id, cells, sold_at, note=""):
        return ",".join([listing_id, *map(_quoted, cells), sold_at, f'"{note}"'])

    text = "\n".join(
        [
            ",".join(headers),  # 1
            row("KS1", GOOD_ROWS[0], "2025-03-01", "over\ntwo lines"),  # 2-3
            row("KS2", GOOD_ROWS[1], "2025-03-02"),  # 4
            row("KS3", BAD_ROW, "2025-03-02"),  # 5: rejected
            row("", GOOD_ROWS[2], "2025-03-03"),  # 6: no id
            row("", GOOD_ROWS[2], "2025-03-03"),  # 7: no id: two accounts alike, not a repeat
            row("KS2", GOOD_ROWS[1], "2025-03-09"),  # 8: sold again a week later
            row("KS1", ["131300", *GOOD_ROWS[0][1:5], "1200"], "2025-03-01", "re-exported"),  # 9
            row("KS3", BAD_ROW, "2025-03-02"),  # 10: rejected (not a repeat: never read)
            row("KS2", GOOD_ROWS[1], "2025-03-02", "a third\ntime"),  # 11-12
        ]
    )
    path = tmp_path / "sales.csv"
    path.write_text(text + "\n", encoding="utf-8")

    loaded = load_listings(path, require_price=True, drop_repeats=True)
    assert loaded.rejects["line"].tolist() == [5, 10]
    repeats = loaded.repeats
    assert repeats[["line", "repeats"]].to_numpy().tolist() == [[9, 2], [11, 4]]
    assert repeats["listing_id"].tolist() == ["KS1", "KS2"]
    assert repeats["price"].tolist() == [1200.0, 3500.0]
    assert repeats["sold_at"].tolist() == [pd.Timestamp("2025-03-01"), pd.Timestamp("2025-03-02")]
    assert len(loaded.listings) == 5 and loaded.total == 9
    assert loaded.listings["listing_id"].fillna("").tolist() == ["KS1", "KS2", "", "", "KS2"]

    # Pricing never leaves a row out: a catalogue may list one account twice.
    kept = load_listings(path, require_price=True)
    assert len(kept.listings) == 7 and len(kept.repeats) == 0
    assert kept.rejects["line"].tolist() == [5, 10]


def test_rows_that_differ_in_anything_read_are_not_repeats(tmp_path):
    base = ["KS1", *GOOD_ROWS[1], "2025-03-02"]
    rows = [base]
    for at, other in [(1, "52,001"), (2, "有违规"), (3, "未开通"), (4, "已认证"), (5, "搞笑")]:
        rows.append([*base[:at], other, *base[at + 1 :]])
    rows += [[*base[:6], "3501"], [*base[:7], "2025-03-03"], ["KS9", *base[1:]]]
    rows += [["KS****9", *base[1:]], ["KS****9", *base[1:]]]  # masked: two accounts, maybe
    path = write_csv(tmp_path / "sales.csv", ["账号ID", *MARKET_HEADERS, "成交日期"], rows)
    loaded = load_listings(path, require_price=True, drop_repeats=True)
    assert len(loaded.repeats) == 0 and len(loaded.listings) == len(rows)
    # and the same rows again, whole, are each a repeat of their first writing
    rows = rows[:-2]  # but the masked ones
    path = write_csv(tmp_path / "twice.csv", ["账号ID", *MARKET_HEADERS, "成交日期"], rows * 2)
    again = load_listings(path, require_price=True, drop_repeats=True)
    assert again.repeats["repeats"].tolist() == list(range(2, 2 + len(rows)))
    assert again.repeats["line"].tolist() == list(range(2 + len(rows), 2 + 2 * len(rows)))


# an export of several files ------------------------------------------------------------------


def test_a_folder_is_read_as_its_exports_by_name(tmp_path, monkeypatch):
    folder = tmp_path / "exports"
    folder.mkdir()
    names = ["10月.xlsx", "2月.csv", "notes.txt", ".hidden.csv", "~$2月.xlsx", "out.rejects.csv"]
    for name in names:
        (folder / name).write_text("x")
    (folder / "old").mkdir()
    files = export_files(folder)
    assert [f.name for f in files] == ["2月.csv", "10月.xlsx"]  # numbers read as numbers
    assert export_name(folder, files) == "exports"
    extra = tmp_path / "late.parquet"
    extra.write_text("x")
    given = [folder, extra, folder / "2月.csv"]  # a file named twice is read once
    files = export_files(given)
    assert [f.name for f in files] == ["2月.csv", "10月.xlsx", "late.parquet"]
    assert export_name(given, files) == "2月+2"
    assert export_name([extra, extra], export_files([extra, extra])) == "late"
    assert export_files(tmp_path / "sales.csv") == [tmp_path / "sales.csv"]  # refused when read
    monkeypatch.chdir(folder)
    assert export_name(Path("."), export_files(Path("."))) == "exports"
    with pytest.raises(ExportError, match="without a CSV, Excel or Parquet file"):
        export_files(folder / "old")
    with pytest.raises(ExportError, match="missing.csv: no such file"):
        export_files([extra, tmp_path / "missing.csv"])  # before any file is read


def test_an_error_in_one_of_several_files_names_it(tmp_path):
    good = write_csv(tmp_path / "a.csv", MARKET_HEADERS, GOOD_ROWS)
    header_only = write_csv(tmp_path / "b.csv", MARKET_HEADERS, [])
    loaded = load_exports([good, header_only], require_price=True, drop_repeats=True)
    assert (loaded.total, len(loaded.listings), len(loaded.rejects)) == (3, 3, 0)
    no_price = write_csv(tmp_path / "c.csv", MARKET_HEADERS[:5], GOOD_ROWS)
    with pytest.raises(ExportError, match=r"c\.csv: .*missing column"):
        load_exports([good, no_price], require_price=True)


def test_several_files_are_one_export_their_rows_placed_by_file_and_line(tmp_path):
    """January's export in the market's headers, February's in English, other columns' order
    and a month's overlap: each read by its own header; rejects and repeats name their file and
    line; a sale both files hold is trained on once."""
    january = write_csv(
        tmp_path / "jan.csv",
        [*MARKET_HEADERS, "账号ID"],
        [
            [*GOOD_ROWS[0], "KS1"],
            ["十万", *GOOD_ROWS[1][1:], "KS2"],
            [*GOOD_ROWS[2], "KS3"],
        ],
    )
    headers = ["listing_id", *reversed(ENGLISH_HEADERS)]
    february = write_csv(
        tmp_path / "feb.csv",
        headers,
        [
            ["KS4", *reversed(GOOD_ROWS[1])],
            ["KS3", *reversed(GOOD_ROWS[2])],  # January's third sale, written again
            ["KS5", "free", *reversed(GOOD_ROWS[0][:5])],
            ["KS3", *reversed(GOOD_ROWS[2])],
        ],
    )
    loaded = load_exports([january, february], require_price=True, drop_repeats=True)
    assert loaded.total == 7
    assert loaded.rejects[["file", "line", "column"]].values.tolist() == [
        ["jan.csv", 3, "粉丝数量"],
        ["feb.csv", 4, "price"],
    ]
    assert loaded.repeats[["file", "line", "repeats_file", "repeats"]].values.tolist() == [
        ["feb.csv", 3, "jan.csv", 4],
        ["feb.csv", 5, "jan.csv", 4],
    ]
    assert loaded.listings["listing_id"].tolist() == ["KS1", "KS3", "KS4"]
    assert loaded.listings["fans"].tolist() == [131300, 800, 52000]
    place = loaded.place(loaded.listings.index.to_numpy())
    assert place.values.tolist() == [["jan.csv", 2], ["jan.csv", 4], ["feb.csv", 2]]
    # One file is read as before: no file column anywhere.
    alone = load_exports([january], require_price=True, drop_repeats=True)
    assert "file" not in alone.rejects and "file" not in alone.place(np.array([0]))


def test_fans_with_粉_under_a_header_s_unit_take_the_unit(tmp_path):
    """`13粉` under 粉丝数量(万) is 13万 fans, as `13` is: never 13."""
    rows = [[fans, *GOOD_ROWS[0][1:]] for fans in ("13", "13粉", "2.5w粉", "13万粉丝")]
    path = write_csv(tmp_path / "sales.csv", ["粉丝数量(万)", *MARKET_HEADERS[1:]], rows)
    loaded = load_listings(path, require_price=True)
    assert loaded.listings["fans"].tolist() == [130_000, 130_000, 25_000, 130_000]
