"""Label selectors: Kubernetes' syntax, its matching rules, and errors that point at the column."""

from __future__ import annotations

import pytest

from jumpstarter_jupyter.selector import SelectorError, check_label, parse

BOARD = {"soc": "imx8mp", "site": "lab1", "rev": "b", "vendor.example.com/kit": "evk"}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("soc=imx8mp", True),
        ("soc==imx8mp", True),
        ("soc = imx8mp ,site!=lab2", True),
        ("soc=imx93", False),
        ("site!=lab1", False),
        ("missing!=x", True),  # != matches boards without the label, as in Kubernetes
        ("rev in (a, b)", True),
        ("rev in (a,c)", False),
        ("rev notin (a,c)", True),
        ("missing notin (a)", True),
        ("rev notin (b)", False),
        ("soc", True),
        ("missing", False),
        ("!missing", True),
        ("!soc", False),
        ("vendor.example.com/kit=evk", True),
        ("soc=imx8mp,!broken,rev in (b),site", True),
        ("soc=imx8mp,rev=c", False),
        ("empty=", False),
    ],
)
def test_requirements_match_as_in_kubernetes(text, matches):
    assert parse(text).matches(BOARD) is matches


def test_an_empty_value_matches_an_empty_label():
    assert parse("empty=").matches({"empty": ""}) and parse("k in (,x)").matches({"k": ""})


def test_a_selector_prints_in_canonical_form_and_parses_back():
    text = " soc == imx8mp , rev in ( b , c , b ),!broken, site "
    canonical = str(parse(text))
    assert canonical == "soc=imx8mp,rev in (b,c),!broken,site"
    assert parse(canonical) == parse(text)


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("soc=imx8mp site=x", 12, "',' between requirements"),
        ("soc=", None, None),  # fine: an empty value
        (",soc", 1, "a label key"),
        ("soc=a,", 7, "a label key"),
        ("rev in b", 8, "'(' starting the list of values"),
        ("rev in (a b)", 11, "',' or ')'"),
        ("rev in (a", 10, "',' or ')'"),
        ("rev > 1", 5, "=, ==, !=, in, notin"),
        ("-soc=x", 1, "a label key"),
        ("soc=-x", 5, "a label value"),
        ("!", 2, "a label key after '!'"),
        ("a" * 64, 1, "a label key"),
    ],
)
def test_errors_name_the_column_and_what_was_expected(text, column, expected):
    if column is None:
        parse(text)
        return
    with pytest.raises(SelectorError) as raised:
        parse(text)
    assert f"at column {column}: expected {expected}" in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_labels_are_checked_for_what_a_selector_can_name():
    assert check_label("vendor.example.com/kit", "evk-2") == ""
    assert "label key 'my key'" in check_label("my key", "x")
    assert "label value 'a b'" in check_label("k", "a b")
