"""The one reader of validated data files: errors name the file, the table and the key."""
import pytest

from common.validated import Table, out_of_range, read_toml


class Bad(ValueError):
    """Stands for ConfigError, MenuError, TemplateError or CatalogError."""


def test_read_toml_names_the_file(tmp_path):
    """Bad TOML and an unreadable file are the caller's error type, naming the file."""
    path = tmp_path / "x.toml"
    path.write_text("[a\n", "utf-8")
    with pytest.raises(Bad, match=f"^{path}: not valid TOML"):
        read_toml(path, Bad)
    with pytest.raises(Bad, match="cannot be read"):
        read_toml(tmp_path / "absent.toml", Bad)


def test_table_errors_name_file_table_and_key():
    """Unknown keys, wrong types, ranges and choices: FILE [table] key: problem."""
    with pytest.raises(Bad, match=r"^f.toml \[t\]: unknown key\(s\) colour$"):
        Table("f.toml [t]", {"colour": 1}, Bad, {"size"})
    t = Table("f.toml [t]", {"size": 11, "flag": True, "kind": "x", "tags": ["a", 1]}, Bad)
    with pytest.raises(Bad, match=r"^f.toml \[t\] size: must be at most 10, not 11$"):
        t.number("size", 1, 1, 10)
    with pytest.raises(Bad, match=r"^f.toml \[t\] flag: has the wrong type$"):
        t.number("flag", 1)
    with pytest.raises(Bad, match=r"^f.toml \[t\] kind: must be one of a, b$"):
        t.choice("kind", ("a", "b"))
    with pytest.raises(Bad, match=r"^f.toml \[t\] tags: must be a list of strings$"):
        t.strings("tags")
    assert t.number("absent", 3, 1, 10) == 3
    with pytest.raises(Bad, match=r"^f.toml \[t\]: must be a table$"):
        Table("f.toml [t]", [1], Bad)


def test_out_of_range_words_the_bound():
    """The INI reader and the TOML tables word a range problem the same way."""
    assert out_of_range(5, 1, 10) is None
    assert out_of_range(0, 1, None) == "must be at least 1, not 0"
