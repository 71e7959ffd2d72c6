"""Check every module of some trees in parts, however small, and compare with the whole check.

    python benchmarks/parts_exactness.py [--part-lines N] TREE...

A module above static/parts.py's MIN_BYTES (1 MiB) is checked in parts; real code rarely has
one. This forces the parts path on every module of each TREE (MIN_BYTES 0, a part every
`--part-lines` lines, default 1: each top-level statement its own part where the split can
be made), with the project's index and the project-wide stages, and compares the text and
JSON output with the ordinary run byte for byte. It prints, per tree, how many modules went
through parts (the rest were parsed by the index stage or fell back to a whole check), how
many of those had findings, and whether the output is identical (exit 1 if not).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devlint import catalog
from devlint.check import lint as linter
from devlint.check import thread
from devlint.check.discover import discover
from devlint.check.fix import materialize
from devlint.check.suppress import Suppression
from devlint.config import Settings
from devlint.output import stream
from devlint.static import analyze, parts


def _outputs(tree: Path) -> dict[str, str]:
    settings = Settings(root=tree)
    files, _ = discover([tree], settings)
    result = linter.lint(files, Suppression(settings, frozenset(catalog.load())))
    findings, _ = thread.project_findings(result)
    text = "".join(stream("text", findings, files=len(files), show_summary=True, environment=None))
    shown = materialize(findings, result.works)
    return {"text": text, "json": "".join(stream("json", shown, files=len(files), show_summary=True, environment=None))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", type=Path, nargs="+")
    parser.add_argument("--part-lines", type=int, default=1)
    args = parser.parse_args()
    real = analyze.check_in_parts
    used: list = []

    def recorded(*a, **k):
        result = real(*a, **k)
        used.append(result)
        return result

    differing = 0
    totals = [0, 0]
    for tree in args.trees:
        parts.MIN_BYTES, analyze.check_in_parts = 1 << 40, real
        whole = _outputs(tree)
        parts.MIN_BYTES, parts.PART_LINES, analyze.check_in_parts = 0, args.part_lines, recorded
        used.clear()
        in_parts = _outputs(tree)
        done = [r for r in used if r is not None]
        found = sum(bool(r.findings) for r in done)
        totals[0] += len(done)
        totals[1] += found
        same = in_parts == whole
        differing += not same
        print(f"{tree.name}: {len(done)} of {len(used)} modules checked in parts ({found} with findings): {'identical' if same else 'DIFFERENT'}", flush=True)
    print(f"{totals[0]} modules in parts, {totals[1]} with findings; {differing} tree(s) with different output")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
