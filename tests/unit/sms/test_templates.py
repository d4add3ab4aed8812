"""Templates: signature first, parameters typed and validated, sensitive values masked."""
from __future__ import annotations

import pytest

from sms.outbox.testing import split_encode
from sms.templates import TemplateError, TemplateSet, _load_file

SIG = {"demo": "示例公积金"}
SAMPLES = {
    "deposit_credited": dict(account="110000000123", date="2026-11-05", amount="1200",
                             balance="35678.9"),
    "withdrawal": dict(account="110000000123", date="2026-11-05", reason="购房",
                       amount="50000", balance="1200.00"),
    "repayment_due_hpf": dict(loan="4000000000000000123", amount="3210.55",
                              due_date="2026-12-10"),
    "repayment_due_insufficient": dict(loan="4000000000000000123", amount="3210.55",
                                       due_date="2026-12-10"),
    "repayment_due_bank": dict(loan="4000000000000000123", amount="3210.55",
                               due_date="2026-12-10"),
    "repayment_posted": dict(loan="4000000000000000123", date="2026-11-10", principal="2000",
                             interest="1210.55", penalty="0", overdue_periods="0",
                             loan_balance="456789.12"),
    "loan_disbursed": dict(loan="4000000000000000123", amount="600000", date="2026-11-01",
                           term_months="360", monthly_repayment="2611.24"),
    "loan_settled": dict(loan="4000000000000000123", date="2026-11-01"),
    "interest_credited": dict(account="110000000123", date="2026-06-30", amount="351.2",
                              balance="40000"),
    "overdue_reminder": dict(loan="4000000000000000123", overdue_periods="2",
                             overdue_principal="4000"),
    "account_changed": dict(account="110000000123", item="预留手机号", date="2026-11-20"),
    "verification_code": dict(code="482913", purpose="登录", minutes="5"),
    "balance_reply": dict(account="110000000123", balance="35678.9", monthly_deposit="2400",
                          paid_up_to="202611"),
}


@pytest.fixture(scope="module")
def templates():
    return TemplateSet(SIG)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_template_renders_with_signature_within_its_part_limit(templates, name):
    """Each of the notification set starts with 【signature】 and fits its max part count."""
    r = templates.render("demo", name, SAMPLES[name])
    assert r.text.startswith("【示例公积金】")
    assert split_encode(r.text).part_count <= r.max_parts


def test_loan_and_account_numbers_show_last_four_only(templates):
    """A loan account appears only as its last 4 digits."""
    r = templates.render("demo", "loan_settled", SAMPLES["loan_settled"])
    assert "尾号0123" in r.text and "4000000000000000123" not in r.text


def test_amounts_are_formatted_to_fen(templates):
    """Amounts render with two decimals and thousands separators."""
    r = templates.render("demo", "deposit_credited", SAMPLES["deposit_credited"])
    assert "1,200.00元" in r.text and "35,678.90元" in r.text


def test_verification_code_is_masked_in_stored_params(templates):
    """The code is in the text but never in the parameters the outbox keeps."""
    r = templates.render("demo", "verification_code", SAMPLES["verification_code"])
    assert "482913" in r.text and r.sensitive and r.klass == "code"
    assert r.logged_params["code"] == "******"


@pytest.mark.parametrize("params,problem", [
    ({"account": "1234", "date": "2026-11-05", "amount": "x", "balance": "1"}, "amount"),
    ({"account": "1234", "date": "05/11/2026", "amount": "1", "balance": "1"}, "date"),
    ({"account": "1234", "date": "2026-11-05", "amount": "1"}, "required"),
    ({"account": "1234", "date": "2026-11-05", "amount": "1", "balance": "1", "x": "1"},
     "unknown"),
])
def test_bad_parameters_are_rejected(templates, params, problem):
    """Wrong types, missing and unknown parameters raise TemplateError naming the problem."""
    with pytest.raises(TemplateError, match=problem):
        templates.render("demo", "deposit_credited", params)


def test_center_file_overrides_a_default_template(tmp_path):
    """A center's own file replaces one template and keeps the rest."""
    (tmp_path / "default.toml").write_text(
        '[a]\nclass = "bulk"\ntext = "{signature}A{x}"\nparams = { x = "int" }\n'
        '[b]\nclass = "bulk"\ntext = "{signature}B"\n', encoding="utf-8")
    (tmp_path / "demo.toml").write_text('[a]\nclass = "bulk"\ntext = "{signature}甲{x}"\n'
                                        'params = { x = "int" }\n', encoding="utf-8")
    t = TemplateSet(SIG, directory=tmp_path)
    assert t.render("demo", "a", {"x": 1}).text == "【示例公积金】甲1"
    assert t.render("demo", "b", {}).text == "【示例公积金】B"


@pytest.mark.parametrize("body,problem", [
    ('[a]\nclass = "bulk"\ntext = "no signature"\n', "start with"),
    ('[a]\nclass = "spam"\ntext = "{signature}"\n', "class"),
    ('[a]\nclass = "bulk"\ntext = "{signature}{y}"\nparams = { x = "int" }\n', "placeholders"),
    ('[a]\nclass = "bulk"\ntext = "{signature}{x}"\nparams = { x = "float" }\n', "type"),
])
def test_invalid_template_files_fail_at_load(tmp_path, body, problem):
    """A template without signature, with an unknown class, type or placeholder is refused."""
    path = tmp_path / "default.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(TemplateError, match=problem):
        _load_file(path)
