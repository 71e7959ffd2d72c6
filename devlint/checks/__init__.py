"""The static checks: one module per rule, each a class with `visit_<Node>` methods.

The engine walks each file once and calls every enabled check's visitors. What a
rule says (message, fix grade, API tables) lives in its catalog file under rules/;
the module here holds only the logic that cannot be data. A static rule's module is
named after it (`DL001` `cuda-without-index` -> `dl001_cuda_without_index`), so the
catalog alone says which checks exist.
"""

from __future__ import annotations

import importlib

from devlint import catalog
from devlint.static.engine import Check


def module_name(rule: catalog.Rule) -> str:
    return f"{__name__}.{rule.code.lower()}_{rule.name.replace('-', '_')}"


def all_checks() -> list[Check]:
    """One check per static rule of the catalog, in code order."""
    rules = [rule for rule in catalog.load().values() if rule.scope == "static"]
    return [importlib.import_module(module_name(rule)).CHECK for rule in rules]
