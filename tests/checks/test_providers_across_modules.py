"""ONNX Runtime providers kept in a module global that another module assigns (roop's
`roop.globals.execution_providers`): the session made with them is judged by that store."""

from devlint.check.snippet import lint_modules

CORE = """\
import onnxruntime
import app.globals


def decode_execution_providers(names):
    available = onnxruntime.get_available_providers()
    return [p for p in available if any(n in p.lower() for n in names)]


def parse(args):
    app.globals.execution_providers = {value}
"""

ANALYSER = """\
import insightface
import app.globals


def get_face_analyser():
    return insightface.app.FaceAnalysis(name="buffalo_l", providers=app.globals.execution_providers)
"""


def _found(value: str) -> list[tuple[str, int, str]]:
    modules = {
        "app/__init__.py": "",
        "app/globals.py": "execution_providers = []\n",
        "app/core.py": CORE.format(value=value),
        "app/analyser.py": ANALYSER,
    }
    return [(f.filename, f.location.row, f.code) for f in lint_modules(modules)]


def test_every_available_provider_stored_by_another_module_is_reported_where_the_session_is_made():
    assert _found("decode_execution_providers(args.execution_provider)") == [("app/analyser.py", 6, "DL014")]


def test_a_cpu_only_list_stored_the_same_way_is_not():
    assert _found('["CPUExecutionProvider"]') == []
