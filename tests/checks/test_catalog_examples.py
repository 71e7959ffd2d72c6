"""Every rule's catalog examples, run as tests: bad is flagged, good is not, fix(bad) == good."""

import textwrap

import pytest

from devlint import catalog
from devlint.check.snippet import fix_text as fix_source, lint_text as lint_source

RULES = [r for r in catalog.load().values() if r.scope == "static"]


def _cases(kind):
    for rule in RULES:
        items = {
            "examples": rule.examples,
            "valid": rule.valid,
            "invalid": rule.invalid,
        }[kind]
        for i, item in enumerate(items):
            yield pytest.param(rule, item, id=f"{rule.code}-{kind}-{i}")


def _codes(text):
    return [f.code for f in lint_source(textwrap.dedent(text))]


@pytest.mark.parametrize("rule,example", list(_cases("examples")))
def test_bad_example_is_flagged(rule, example):
    assert rule.code in _codes(example.bad), example.bad


@pytest.mark.parametrize("rule,example", [p for p in _cases("examples") if p.values[1].good])
def test_good_example_is_clean(rule, example):
    assert _codes(example.good) == [], example.good


@pytest.mark.parametrize(
    "rule,example",
    [p for p in _cases("examples") if p.values[1].good and p.values[0].fix_applicability and p.values[0].fix_applicability.value != "display-only"],
)
def test_fixing_bad_gives_good(rule, example):
    fixed, remaining = fix_source(example.bad, unsafe=True)
    assert fixed == example.good
    assert [f.code for f in remaining] == []


@pytest.mark.parametrize("rule,code", list(_cases("valid")))
def test_valid_code_is_not_flagged(rule, code):
    assert rule.code not in _codes(code)


@pytest.mark.parametrize("rule,code", list(_cases("invalid")))
def test_invalid_code_is_flagged(rule, code):
    assert rule.code in _codes(code)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_every_static_rule_has_a_bad_and_a_good_example(rule):
    assert rule.examples, f"{rule.code} has no examples"
    assert any(e.good for e in rule.examples), f"{rule.code} has no good example"
