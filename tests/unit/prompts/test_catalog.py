"""Catalog loading and validation, and the numbering used on the phone."""
import pytest

from prompts import catalog


def _write(tmp_path, name, text):
    (tmp_path / name).write_text(text, encoding="utf-8")


def test_repository_catalog_loads_with_both_languages():
    """The shipped catalog is valid: every prompt has Mandarin and English text."""
    cat = catalog.load()
    assert "admin/welcome" in cat.prompts and "common/goodbye" in cat.prompts
    assert all(p.text["zh"] and p.text["en"] for p in cat.prompts.values())


def test_both_table_styles_are_read(tmp_path):
    """[prompt."id"] with used_by and top-level ["id"] with used are the same thing."""
    _write(tmp_path, "a.toml", '[prompt."menu/main"]\nzh = "主菜单"\nen = "Main"\n'
                               'used_by = ["ivr.menu.main"]\n')
    _write(tmp_path, "b.toml", '["num/1"]\nzh = "一"\nen = "one"\nused = "speech"\n')
    cat = catalog.load(tmp_path)
    assert cat.prompts["menu/main"].used_by == ("ivr.menu.main",)
    assert cat.prompts["num/1"].used_by == ("speech",)


@pytest.mark.parametrize("a,b,words", [
    ('["x/a"]\nzh = "甲"\nen = "a"\n', '["x/a"]\nzh = "乙"\nen = "b"\n', "already defined"),
    ('["x/a"]\nzh = "甲"\n', "", "non-empty 'en'"),
    ('["x/a"]\nzh = "  "\nen = "a"\n', "", "non-empty 'zh'"),
    ('["X A"]\nzh = "甲"\nen = "a"\n', "", "lower-case"),
    ('["x/a"]\nzh = "甲"\nen = "a"\ncolour = 1\n', "", "unknown key"),
    ('["x/a"\n', "", "not valid TOML"),
])
def test_invalid_catalogs_are_refused_naming_the_file(tmp_path, a, b, words):
    """Duplicates, a missing language, empty text, bad ids, unknown keys and bad TOML."""
    _write(tmp_path, "a.toml", a)
    if b:
        _write(tmp_path, "b.toml", b)
    with pytest.raises(catalog.CatalogError, match=words) as e:
        catalog.load(tmp_path)
    assert ".toml" in str(e.value)


def test_numbers_are_sorted_positions(tmp_path):
    """Numbers are 3-digit positions in id order; by_number refuses what does not exist."""
    _write(tmp_path, "a.toml", '["b"]\nzh = "乙"\nen = "b"\n["a"]\nzh = "甲"\nen = "a"\n')
    cat = catalog.load(tmp_path)
    assert [(n, p.id) for n, p in cat.numbered()] == [("001", "a"), ("002", "b")]
    assert cat.by_number("002").id == "b" and cat.number_of("a") == "001"
    assert cat.by_number("003") is None and cat.by_number("000") is None
    assert cat.by_number("*") is None


def test_text_hash_changes_with_text():
    """build-defaults relies on the hash changing exactly when the text does."""
    p1 = catalog.Prompt("a", {"zh": "甲", "en": "a"}, (), "x")
    p2 = catalog.Prompt("a", {"zh": "乙", "en": "a"}, (), "x")
    assert p1.text_sha256("zh") != p2.text_sha256("zh")
    assert p1.text_sha256("en") == p2.text_sha256("en")
