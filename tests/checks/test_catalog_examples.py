"""Every rule's catalog examples, run as tests: bad is flagged, good is not, fix(bad) == good.

An example may span several modules (a fix that threads a device across them): then the
modules are checked and fixed together, as one project.
"""

import textwrap

import pytest

from devlint import catalog
from devlint.check.snippet import fix_modules, lint_modules

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


def _dedent(modules):
    return {name: textwrap.dedent(text) for name, text in modules.items()}


def _codes(modules):
    return [f.code for f in lint_modules(_dedent(modules))]


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
    fixed, remaining = fix_modules(_dedent(example.bad), unsafe=True)
    assert fixed == _dedent(example.good)
    assert [f.code for f in remaining] == []


@pytest.mark.parametrize("rule,code", list(_cases("valid")))
def test_valid_code_is_not_flagged(rule, code):
    assert rule.code not in _codes({catalog.SINGLE: code})


@pytest.mark.parametrize("rule,code", list(_cases("invalid")))
def test_invalid_code_is_flagged(rule, code):
    assert rule.code in _codes({catalog.SINGLE: code})


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_every_static_rule_has_a_bad_and_a_good_example(rule):
    assert rule.examples, f"{rule.code} has no examples"
    assert any(e.good for e in rule.examples), f"{rule.code} has no good example"


def test_a_threaded_fix_across_two_modules_is_among_the_examples():
    assert any(e.good and len(e.bad) > 1 for rule in RULES for e in rule.examples)


def test_every_static_rule_has_its_check_module_and_nothing_else_is_one():
    from pathlib import Path

    from devlint.checks import all_checks, module_name

    assert [check.code for check in all_checks()] == [rule.code for rule in RULES]
    package = Path(__file__).resolve().parents[2] / "devlint" / "checks"
    named = {module_name(rule).rsplit(".", 1)[-1] for rule in RULES}
    modules = {p.stem for p in package.glob("dl[0-9]*.py")}
    assert modules == named  # a stray module would be a rule the catalog does not know
