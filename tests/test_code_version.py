"""A cache made by other devlint code is not replayed: the code's fingerprint is in its key."""

import os

from devlint import code_version


def test_an_edited_source_file_changes_the_fingerprint_and_byte_code_does_not(tmp_path):
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "rule.py"
    source.write_text("x = 1\n")
    before = code_version.fingerprint_of(tmp_path)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "rule.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "notes.txt").write_text("not code")
    assert code_version.fingerprint_of(tmp_path) == before
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert code_version.fingerprint_of(tmp_path) != before


def test_the_result_cache_key_holds_the_fingerprint(tmp_path, monkeypatch):
    from devlint.check import cache

    key = cache.header_key(frozenset({"DL001"}), tmp_path)
    monkeypatch.setattr(code_version, "fingerprint", lambda: "0.1.0+other")
    assert cache.header_key(frozenset({"DL001"}), tmp_path) != key
