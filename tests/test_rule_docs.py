"""Every finding's url points at a rule page in docs/, generated from the catalog."""

from pathlib import Path
import json

ROOT = Path(__file__).resolve().parents[1]
from devlint import catalog, rule_docs


def test_docs_pages_are_generated_from_the_catalog():
    for rule in catalog.load().values():
        page = ROOT / "docs" / "rules" / f"{rule.code}.md"
        assert page.is_file(), f"missing {page}: run `python -m devlint.rule_docs docs/rules`"
        assert page.read_text() == rule_docs.markdown(rule), f"{page} is stale: run `python -m devlint.rule_docs docs/rules`"


def test_every_url_names_an_existing_page(run_devlint):
    _, out, _ = run_devlint("check", ROOT / "fixtures", "--output-format", "json", "--no-cache")
    for finding in json.loads(out):
        relative = finding["url"].split("/blob/main/", 1)[1]
        assert (ROOT / relative).is_file()


def test_every_rule_page_has_the_parts_a_reader_needs():
    for rule in catalog.load().values():
        page = rule_docs.markdown(rule)
        assert page.startswith(f"# {rule.code} {rule.name}")
        assert "## Why" in page and "## Fix" in page
        if rule.scope == "static":
            assert "Leaks:" in page and "Instead:" in page and "## PyTorch versions" in page
