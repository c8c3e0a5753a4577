"""Tables as files people open in Excel: CSV and XLSX (PROTOCOL.md section 6).

One place for both the reports and the record lists. CSV is UTF-8 with a byte-order
mark (so Excel reads Vietnamese right) and CRLF line ends; in both formats a text
cell that a spreadsheet would take for a formula (it begins with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) is prefixed with ``'`` (OWASP, "CSV
injection"). Numbers stay numbers.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

__all__ = ["CSV_TYPE", "XLSX_TYPE", "Cell", "attachment", "csv_bytes", "neutralise", "xlsx_bytes"]

CSV_TYPE = "text/csv"  # Litestar adds "; charset=utf-8" to text types
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Cell = str | int | float | bool | None
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def neutralise(value: Cell) -> Cell:
    """A text cell a spreadsheet would run as a formula, made plain text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow(["" if v is None else neutralise(v) for v in row])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[Cell]], title: str = "patrol-sync") -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31] or "Sheet1")
    bold = Font(bold=True)
    heads = []
    for name in header:
        cell = WriteOnlyCell(sheet, value=neutralise(name))
        cell.font = bold
        heads.append(cell)
    sheet.append(heads)
    for row in rows:
        # data_type "s": openpyxl would otherwise store a text beginning with "=" as a formula
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=neutralise(value))
            if isinstance(value, str):
                cell.data_type = "s"
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def attachment(stem: str, extension: str, today: dt.date | None = None) -> str:
    """A ``Content-Disposition`` value naming the file ``<stem>-<date>.<ext>`` (ASCII)."""
    day = (today or dt.date.today()).isoformat()
    name = _UNSAFE_NAME.sub("-", stem).strip("-") or "export"
    return f'attachment; filename="{name}-{day}.{extension}"'
