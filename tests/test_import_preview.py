"""What the console's mapping step reads of a lead file, by the import's own rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.imports import count_lines, preview, suggested_mapping
from campaigns.leads import ImportFileError, map_columns


def test_the_preview_reads_encoding_delimiter_and_quotes_as_the_import_does(
    tmp_path: Path,
) -> None:
    path = tmp_path / "leads.csv"
    rows = ["Tel;Vorname;Notiz", '0301234567;Jürgen;"zwei\nZeilen"'] + [
        f"030123456{i};Name{i};x" for i in range(12)
    ]
    path.write_bytes(("\ufeff" + "\n".join(rows)).encode("cp1252", errors="ignore"))
    sample = preview(path, rows=3)
    assert sample.delimiter == ";"
    assert sample.header == ["Tel", "Vorname", "Notiz"]
    assert sample.rows[0] == ["0301234567", "Jürgen", "zwei\nZeilen"]
    assert len(sample.rows) == 3
    assert sample.suggested == {"phone": "Tel"}
    # Lines, not records: the quoted line break counts (the progress bar's estimate).
    assert sample.lines == 14


def test_an_empty_file_is_refused_as_the_import_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ImportFileError, match=r"empty\.csv is empty"):
        preview(path)


@pytest.mark.parametrize(
    ("content", "lines"), [(b"h\n", 0), (b"h\na\nb", 2), (b"h\na\nb\n", 2), (b"", 0)]
)
def test_lines_are_counted_after_the_header(tmp_path: Path, content: bytes, lines: int) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    assert count_lines(path) == lines


def test_suggestions_follow_the_header_aliases_first_come_first_mapped() -> None:
    assert suggested_mapping(["Mobile", "Phone", "First Name", "surname", "Plan"]) == {
        "phone": "Mobile",
        "first_name": "First Name",
        "last_name": "surname",
    }


def test_a_field_mapped_to_nothing_is_not_mapped_by_its_name() -> None:
    columns = map_columns(["phone", "first_name", "Given"], {"first_name": "Given"})
    assert columns.fields == {"first_name": 2, "phone": 0}
    assert columns.custom == {"first_name": 1}
    columns = map_columns(["phone", "first_name"], {"first_name": ""})
    assert "first_name" not in columns.fields and columns.custom == {"first_name": 1}
