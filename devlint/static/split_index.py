"""Programs that carry the GPU index apart from the device type.

faster-whisper and CTranslate2 take `device="cuda", device_index=1`: the type and the index
travel as two values, and "cuda:1" is refused. A program built on them (whisperX) passes
both to that loader, then hands the same `device` alone to torch code (an alignment model,
a diarization pipeline): there it is index-less "cuda", the current device, GPU0 whatever
`--device_index` said. This module finds, per scope, the device names whose index the
scope's own code passes separately, so DL002 can report the calls that drop it.
"""

from __future__ import annotations

import ast

from devlint.static.scope import Scope, _shallow

# Keywords that carry the GPU index beside a `device=` type (faster-whisper, CTranslate2).
INDEX_KEYWORDS = frozenset({"device_index", "gpu_index"})


def indexed_apart(scope: Scope) -> dict[str, str]:
    """The names this scope passes as `device=NAME` together with an index keyword
    (`device_index=I`), each with the index's source name: `{"device": "device_index"}`."""
    found: dict[str, str] = {}
    for node in _shallow(scope.body):
        if not isinstance(node, ast.Call):
            continue
        device = index = None
        for kw in node.keywords:
            if kw.arg == "device" and isinstance(kw.value, ast.Name):
                device = kw.value.id
            elif kw.arg in INDEX_KEYWORDS and isinstance(kw.value, ast.Name):
                index = kw.value.id
        if device is not None and index is not None:
            found.setdefault(device, index)
    return found


def passes_an_index(call: ast.Call) -> bool:
    return any(kw.arg in INDEX_KEYWORDS for kw in call.keywords)
