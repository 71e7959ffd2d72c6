"""Recall and precision of `devlint check` on the hand-labelled real-code corpus (issue 12).

    python benchmarks/real_code.py PATH_TO_CHECKOUTS [--repo NAME]... [--json]
                                   [--labels-dir DIR] [--repos-file FILE]

PATH_TO_CHECKOUTS holds one checkout per repository, in a directory named NAME (the part after
the slash in real_code/repos.txt). Every repository listed there that has a labels file
(real_code/labels/OWNER__NAME.csv) is checked with this checkout's devlint, under an empty
configuration so that the repository's own [tool.devlint] cannot change the result.

A finding and a label match when the finding's start row and the label's line fall in the same
innermost simple statement (or the same compound-statement header: a `def` line, an `if` test).
In a notebook (*.ipynb) a label's line is written `cellN:ROW`: ROW within the Nth code cell,
counted as devlint counts them (its JSON gives `cell` and the row within it); statements are
those of the code cells joined into one module, as devlint reads a notebook.
Scored by labelled line: a leak label matched by a finding is found, one without is a miss.
A label of a file that is a symbolic link to another file of the checkout counts at the file
linked to, once (devlint checks a file once, under its real path).
Each statement with findings and no leak label is one false positive, "unlabelled" when no
label at all covers it. Test files, setup.py and DL901 (unparsable files, listed apart) are
left out, as the labelling rules leave them out. So are the paths a labelling says it left out
(vendored copies of other projects, a repository labelled in part): labels/OWNER__NAME.scope
lists them, one glob a line, `skip GLOB` or `only GLOB` (then everything else is out), taken
from the labeller's notes; a finding there is no verdict either way.

Each repository belongs to a split: `train` (the rules were written and tuned looking at it)
or `test` (labelled blind, before devlint ever ran on it; no rule may be changed while looking
at it). repos.txt marks a test repository with the word `test` after its commit. Results are
reported per split, and the targets apply to `test`: a figure on code the rules were tuned
against measures fit, not quality. `--split` scores one split only.
"""

from __future__ import annotations

import argparse
import ast
import csv
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's devlint, as scored
from devlint.static.document import NotANotebook, python_of  # noqa: E402  (reads notebooks as devlint does)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
LABEL_HEADER = ["path", "line", "label", "class", "why"]
UNPARSABLE = "DL901"


class BadArguments(Exception):
    """A usage or input error: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise BadArguments(message)


SPLITS = ("train", "test")


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    commit: str
    split: str = "train"

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True, order=True)
class Position:
    """A line of a file, or of a notebook's code cell (`cell` 0: not a notebook)."""

    cell: int
    row: int

    @classmethod
    def parse(cls, text: str) -> Position | None:
        cell, _, row = text.rpartition(":")
        if cell == "" and row.isdigit():
            return cls(0, int(row))
        if cell.startswith("cell") and cell[4:].isdigit() and row.isdigit():
            return cls(int(cell[4:]), int(row))
        return None

    def __str__(self) -> str:
        return f"cell{self.cell}:{self.row}" if self.cell else str(self.row)


@dataclass(frozen=True)
class Label:
    path: str
    line: Position
    leak: bool
    kind: str
    why: str


@dataclass
class Score:
    repository: Repository
    head: str | None = None
    leaks: int = 0
    found: int = 0
    misses: list[Label] = field(default_factory=list)
    false_positives: list[dict] = field(default_factory=list)  # one entry per statement
    unparsable: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def unlabelled(self) -> int:
        return sum(1 for fp in self.false_positives if fp["label"] is None)


def read_repositories(path: Path) -> list[Repository]:
    repositories = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        slug, _, commit = words[0].partition("@")
        owner, _, name = slug.partition("/")
        split = words[1] if len(words) > 1 else "train"
        if not (owner and name and commit) or "/" in name or len(words) > 2 or split not in SPLITS:
            raise BadArguments(f"{path}:{number}: expected OWNER/NAME@COMMIT [test], got {raw.strip()!r}")
        repositories.append(Repository(owner, name, commit, split))
    return repositories


def _through_links(labels: list[Label], checkout: Path) -> list[Label]:
    """Labels of a file that is a symbolic link to another file of the checkout, moved to that
    file and merged with its own (a leak label wins): devlint checks one file once, under its
    real path, so a line labelled under both names is one line."""
    root = checkout.resolve()
    merged: dict[tuple[str, Position], Label] = {}
    for label in labels:
        path = checkout / label.path
        if path.is_symlink():
            real = path.resolve()
            if real.is_file() and real.is_relative_to(root):
                label = replace(label, path=real.relative_to(root).as_posix())
        key = (label.path, label.line)
        if key not in merged or (label.leak and not merged[key].leak):
            merged[key] = label
    return list(merged.values())


def read_labels(path: Path) -> list[Label]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or rows[0] != LABEL_HEADER:
        raise BadArguments(f"{path}: the header must be {','.join(LABEL_HEADER)}")
    labels = []
    for number, row in enumerate(rows[1:], 2):
        position = Position.parse(row[1]) if len(row) == len(LABEL_HEADER) else None
        if position is None or row[2] not in ("leak", "ok") or (position.cell > 0) != row[0].endswith(".ipynb"):
            raise BadArguments(f"{path}:{number}: expected path,line,leak|ok,class,why (line: N, or cellN:ROW in a notebook)")
        labels.append(Label(row[0], position, row[2] == "leak", row[3], row[4]))
    return labels


@dataclass(frozen=True)
class Scope:
    """The paths a labelling covers (labels/OWNER__NAME.scope): `skip` globs it left out, and
    `only` globs that, when given, it was limited to."""

    skip: tuple[str, ...] = ()
    only: tuple[str, ...] = ()

    def covers(self, path: str) -> bool:
        if self.only and not any(fnmatch.fnmatchcase(path, glob) for glob in self.only):
            return False
        return not any(fnmatch.fnmatchcase(path, glob) for glob in self.skip)


def read_scope(path: Path) -> Scope:
    """A `.scope` file: `skip GLOB` / `only GLOB` lines; `#` comments and blank lines ignored."""
    if not path.is_file():
        return Scope()
    skip, only = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, glob = line.partition(" ")
        if kind not in ("skip", "only") or not glob.strip():
            raise BadArguments(f"{path}:{number}: expected `skip GLOB` or `only GLOB`")
        (skip if kind == "skip" else only).append(glob.strip())
    return Scope(tuple(skip), tuple(only))


def left_out(path: str) -> bool:
    """Files the labelling rules skip: test files and setup.py."""
    parts = PurePosixPath(path).parts
    name = parts[-1]
    return (
        any(part in ("test", "tests") for part in parts[:-1])
        or fnmatch.fnmatchcase(name, "test_*.py")
        or fnmatch.fnmatchcase(name, "*_test.py")
        or name == "setup.py"
    )


class Statements:
    """Maps a position in a file to the span of the innermost statement (or header) holding it."""

    def __init__(self, path: str, stored: bytes):
        self._span: dict[int, tuple[int, int]] = {}
        self._cell_starts: list[int] = []
        try:
            source, notebook = python_of(path, stored)
            if notebook is not None:
                self._cell_starts = notebook.starts
            tree = ast.parse(source)
        except (SyntaxError, ValueError, NotANotebook):
            return
        self._visit(tree.body)

    def key(self, position: Position) -> tuple[int, int]:
        line = position.row
        if position.cell and position.cell <= len(self._cell_starts):
            line += self._cell_starts[position.cell - 1] - 1  # the row in the joined module
        return self._span.get(line, (line, line))

    def _visit(self, statements: list) -> None:
        for node in statements:
            blocks = [getattr(node, name) for name in ("body", "orelse", "finalbody") if isinstance(getattr(node, name, None), list)]
            blocks += [handler.body for handler in getattr(node, "handlers", [])]
            blocks += [case.body for case in getattr(node, "cases", [])]
            blocks = [block for block in blocks if block]
            if not blocks:
                self._claim(node.lineno, node.end_lineno)
                continue
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            first_child = min(block[0].lineno for block in blocks)
            self._claim(start, max(node.lineno, first_child - 1))
            for handler in getattr(node, "handlers", []):
                if handler.body:
                    self._claim(handler.lineno, max(handler.lineno, handler.body[0].lineno - 1))
            for case in getattr(node, "cases", []):
                self._claim(case.pattern.lineno, max(case.pattern.lineno, case.body[0].lineno - 1))
            for block in blocks:
                self._visit(block)

    def _claim(self, start: int, end: int) -> None:
        for line in range(start, end + 1):
            self._span[line] = (start, end)


def run_devlint(checkout: Path) -> list[dict]:
    """This checkout's devlint on `checkout`, under an empty configuration; paths made repo-relative."""
    root = checkout.resolve()
    with tempfile.TemporaryDirectory() as empty:
        config = Path(empty) / "pyproject.toml"
        config.write_text("", encoding="utf-8")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        done = subprocess.run(
            [sys.executable, "-m", "devlint", "check", "--output-format", "json", "--no-cache",
             "--exit-zero", "--config", str(config), str(root)],
            cwd=empty, env=env, capture_output=True, text=True,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"devlint exited {done.returncode}: {last}")
        findings = json.loads(done.stdout)
        for finding in findings:
            path = Path(empty, finding["filename"]).resolve()
            try:
                finding["path"] = path.relative_to(root).as_posix()
            except ValueError:
                finding["path"] = finding["filename"]
    return findings


def head_of(checkout: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def score(repository: Repository, checkout: Path, labels: list[Label], scope: Scope = Scope()) -> Score:
    result = Score(repository)
    result.head = head_of(checkout)
    if result.head is None:
        result.warnings.append(f"{repository.slug}: cannot read the checkout's HEAD; labels are for {repository.commit}")
    elif not result.head.startswith(repository.commit.lower()):
        result.warnings.append(f"{repository.slug}: checkout is at {result.head}, labels are for {repository.commit}")

    kept = [label for label in labels if not left_out(label.path)]
    if len(kept) != len(labels):
        result.warnings.append(f"{repository.slug}: {len(labels) - len(kept)} label(s) in test files or setup.py ignored")
    scoped = [label for label in kept if scope.covers(label.path)]
    if len(scoped) != len(kept):
        result.warnings.append(f"{repository.slug}: {len(kept) - len(scoped)} label(s) in paths its scope leaves out ignored")
    kept = scoped
    linked = len(kept)
    kept = _through_links(kept, checkout)
    if len(kept) != linked:
        result.warnings.append(
            f"{repository.slug}: {linked - len(kept)} label(s) of symlinked files counted once, at the file linked to"
        )
    findings = []
    for finding in run_devlint(checkout):
        if left_out(finding["path"]) or not scope.covers(finding["path"]):
            continue
        if finding["code"] == UNPARSABLE:
            result.unparsable.append(finding)
        else:
            findings.append(finding)

    statements: dict[str, Statements] = {}

    def statement(path: str, position: Position) -> tuple[str, tuple[int, int]]:
        if path not in statements:
            try:
                statements[path] = Statements(path, (checkout / path).read_bytes())
            except OSError:
                statements[path] = Statements(path, b"")
        return path, statements[path].key(position)

    by_statement: dict[tuple, list[Label]] = {}
    for label in kept:
        if not (checkout / label.path).is_file():
            result.warnings.append(f"{repository.slug}: labelled file {label.path} is missing")
        by_statement.setdefault(statement(label.path, label.line), []).append(label)
    flagged: dict[tuple, list[dict]] = {}
    for finding in findings:
        flagged.setdefault(statement(finding["path"], position_of(finding)), []).append(finding)

    found: set[Label] = set()
    for key, group in sorted(flagged.items()):
        covering = by_statement.get(key, [])
        leaks = [label for label in covering if label.leak]
        if leaks:
            found.update(leaks)
            continue
        label = covering[0] if covering else None
        result.false_positives.append({"path": key[0], "findings": group, "label": label})
    leak_labels = [label for label in kept if label.leak]
    result.leaks = len(leak_labels)
    result.found = len(found)
    result.misses = sorted((label for label in leak_labels if label not in found), key=lambda l: (l.path, l.line))
    return result


def position_of(finding: dict) -> Position:
    return Position(finding.get("cell") or 0, finding["location"]["row"])


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def summary(name: str, leaks: int, found: int, false_positives: int, unlabelled: int) -> dict:
    return {
        "repository": name, "leaks": leaks, "found": found, "missed": leaks - found,
        "false_positives": false_positives, "unlabelled": unlabelled,
        "recall": _ratio(found, leaks), "precision": _ratio(found, found + false_positives),
    }


def row_of(result: Score) -> dict:
    return summary(result.repository.slug, result.leaks, result.found, len(result.false_positives), result.unlabelled)


def overall(results: list[Score], name: str = "overall") -> dict:
    rows = [row_of(r) for r in results]
    return summary(name, *(sum(row[k] for row in rows) for k in ("leaks", "found", "false_positives", "unlabelled")))


def by_split(results: list[Score]) -> dict[str, list[Score]]:
    """The results of each split that has any, train first."""
    return {split: [r for r in results if r.repository.split == split] for split in SPLITS
            if any(r.repository.split == split for r in results)}


def looked_at(results: list[Score], show_test: bool) -> list[Score]:
    """The results whose misses and false positives may be printed: test repositories stay blind.

    Reading a test repository's misses is looking at it; after that it is train. So the details
    of the test split are withheld unless asked for by name (`--show-test-details`)."""
    return [r for r in results if show_test or r.repository.split != "test"]


def as_json(results: list[Score], failures: list[str], show_test: bool = False) -> dict:
    def label_json(label: Label | None) -> dict | None:
        return None if label is None else {"path": label.path, "line": label.line.row, "cell": label.line.cell or None, "label": "leak" if label.leak else "ok", "class": label.kind, "why": label.why}

    def finding_json(finding: dict) -> dict:
        return {"path": finding["path"], "line": finding["location"]["row"], "cell": finding.get("cell"), "code": finding["code"], "message": finding["message"]}

    detailed = looked_at(results, show_test)
    return {
        "repositories": [
            {
                **row_of(r),
                "split": r.repository.split,
                "commit": r.repository.commit,
                "head": r.head,
                **({
                    "misses": [label_json(label) for label in r.misses],
                    "false_positive_statements": [
                        {"findings": [finding_json(f) for f in fp["findings"]], "label": label_json(fp["label"])}
                        for fp in r.false_positives
                    ],
                } if r in detailed else {}),
                "unparsable": [finding_json(f) for f in r.unparsable],
                "warnings": r.warnings,
            }
            for r in results
        ],
        "overall": overall(results),
        "splits": {split: overall(group, split) for split, group in by_split(results).items()},
        "errors": failures,
    }


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def as_text(results: list[Score], failures: list[str], show_test: bool = False) -> str:
    groups = by_split(results)
    rows = []
    for split, group in groups.items():
        rows += [row_of(r) for r in group] + [overall(group, f"{split} overall")]
    if len(groups) != 1:
        rows.append(overall(results, "all overall"))
    width = max([len("repository")] + [len(row["repository"]) for row in rows])
    heads = ("leaks", "found", "missed", "FP", "unlabelled", "recall", "precision")
    lines = [f"{'repository':<{width}}  " + "  ".join(f"{h:>{max(len(h), 5)}}" for h in heads)]
    for row in rows:
        cells = (row["leaks"], row["found"], row["missed"], row["false_positives"], row["unlabelled"],
                 _fraction(row["recall"]), _fraction(row["precision"]))
        lines.append(f"{row['repository']:<{width}}  " + "  ".join(f"{c:>{max(len(h), 5)}}" for c, h in zip(cells, heads)))
    detailed = looked_at(results, show_test)
    withheld = [r for r in results if r not in detailed]
    if withheld:
        lines += ["", f"the misses and false positives of the test split ({len(withheld)} repositories) are not shown:",
                  "reading them is looking at those repositories, which makes them train (--show-test-details)"]
    misses = [(r.repository.name, label) for r in detailed for label in r.misses]
    lines += ["", f"misses ({len(misses)}):"]
    lines += [f"  {name}/{label.path}:{label.line} {label.kind} {label.why}" for name, label in misses]
    fps = [(r.repository.name, fp) for r in detailed for fp in r.false_positives]
    lines += ["", f"false positives ({len(fps)} statements):"]
    for name, fp in fps:
        label = fp["label"]
        verdict = "unlabelled" if label is None else f"ok ({label.kind}, line {label.line}): {label.why}"
        for finding in fp["findings"]:
            lines.append(f"  {name}/{fp['path']}:{position_of(finding)} {finding['code']} {finding['message']} | {verdict}")
    unparsable = [(r.repository.name, f) for r in results for f in r.unparsable]
    if unparsable:
        lines += ["", f"unparsable files ({len(unparsable)}):"]
        lines += [f"  {name}/{f['path']}: {f['message']}" for name, f in unparsable]
    if failures:
        lines += ["", "not scored:"] + [f"  {message}" for message in failures]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="real_code.py", description="Recall and precision of devlint on the labelled corpus.")
    parser.add_argument("checkouts", type=Path, help="directory holding one checkout per repository, named NAME")
    parser.add_argument("--repo", action="append", default=[], help="score only this repository (NAME or OWNER/NAME); repeatable")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--split", choices=SPLITS, help="score only the repositories of this split")
    parser.add_argument("--show-test-details", action="store_true",
                        help="also print the test split's misses and false positives (looking at them makes a repository train)")
    parser.add_argument("--labels-dir", type=Path, default=HERE / "real_code" / "labels")
    parser.add_argument("--repos-file", type=Path, default=HERE / "real_code" / "repos.txt")
    try:
        args = parser.parse_args(argv)
        if not args.checkouts.is_dir():
            raise BadArguments(f"{args.checkouts}: not a directory")
        if not args.repos_file.is_file():
            raise BadArguments(f"{args.repos_file}: no such file")
        repositories = read_repositories(args.repos_file)
        labelled = {r: args.labels_dir / f"{r.owner}__{r.name}.csv" for r in repositories}
        labelled = {r: p for r, p in labelled.items() if p.is_file()}
        chosen = [r for r in labelled if args.split in (None, r.split)]
        if args.repo:
            known = {key: r for r in repositories for key in (r.name, r.slug)}
            unknown = [name for name in args.repo if name not in known]
            if unknown:
                raise BadArguments(f"unknown repository {unknown[0]!r} (not in {args.repos_file})")
            unlabelled = [name for name in args.repo if known[name] not in labelled]
            if unlabelled:
                raise BadArguments(f"no labels file for {unlabelled[0]!r} in {args.labels_dir}")
            wanted = {known[name] for name in args.repo}
            chosen = [r for r in chosen if r in wanted]
        labels = {r: read_labels(labelled[r]) for r in chosen}
        scopes = {r: read_scope(labelled[r].with_suffix(".scope")) for r in chosen}
    except BadArguments as exc:
        print(f"real_code.py: error: {exc}", file=sys.stderr)
        return 2

    results, failures = [], []
    for repository in chosen:
        checkout = args.checkouts / repository.name
        if not checkout.is_dir():
            failures.append(f"{repository.slug}: no checkout at {checkout}")
            continue
        try:
            result = score(repository, checkout, labels[repository], scopes[repository])
        except (RuntimeError, ValueError) as exc:
            failures.append(f"{repository.slug}: {exc}")
            continue
        results.append(result)
    for message in [w for r in results for w in r.warnings] + failures:
        print(f"real_code.py: warning: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps(as_json(results, failures, args.show_test_details), indent=2))
    else:
        print(as_text(results, failures, args.show_test_details), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
