"""The device-value engine: which device an expression holds, as a user reading it would say."""

import ast
import textwrap

import pytest

from devlint.static import values
from devlint.static.scope import build_scope
from devlint.static.values import Kind


def _value_of_last_use(code: str) -> values.Value:
    """The value of the argument of the last `.to(...)` in `code`, in its own scope."""
    tree = ast.parse(textwrap.dedent(code))
    module = build_scope(tree, None, "example")
    found = []

    def visit(node, scope):
        for child in ast.iter_child_nodes(node):
            inner = scope.child(child) if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) else scope
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr == "to":
                found.append((child.args[0], scope))
            visit(child, inner)

    visit(tree, module)
    expr, scope = found[-1]
    return values.evaluate(expr, scope)


@pytest.mark.parametrize(
    "code, kind, index",
    [
        ('x.to("cuda")', Kind.CURRENT, None),
        ('x.to("cuda:1")', Kind.GPU, 1),
        ('x.to("cpu")', Kind.CPU, None),
        ("x.to(0)", Kind.GPU, 0),
        ('x.to(str("cuda:0"))', Kind.GPU, 0),
        ('x.to(torch.device("cuda", 2))', Kind.GPU, 2),
        ('x.to("cuda" if torch.cuda.is_available() else "cpu")', Kind.CURRENT, None),
        ('x.to(torch.device("mps") if mps else torch.device("cuda"))', Kind.CURRENT, None),
        ('for i in range(4):\n    x.to("cuda:%d" % i)', Kind.ALL, None),
        ('for i in range(4):\n    x.to("cuda:{}".format(i))', Kind.ALL, None),
        ('for i in range(4):\n    x.to(f"cuda:{i}")', Kind.ALL, None),
        ('def f(rank):\n    x.to(f"cuda:{rank}")', Kind.GIVEN, None),
        ('def f(rank):\n    x.to("cuda:%d" % rank)', Kind.GIVEN, None),
        ("def f(y):\n    x.to(y.device)", Kind.GIVEN, None),
        ('gpu_ids = [0, 1]\nx.to(gpu_ids[0])', Kind.GPU, 0),
        ('cfg = {"device": "cuda"}\nx.to(cfg["device"])', Kind.CURRENT, None),
    ],
)
def test_expressions(code, kind, index):
    value = _value_of_last_use("import torch\n" + code)
    assert value.kind is kind
    if index is not None:
        assert value.index == index


def test_a_suffix_built_from_an_optional_index_is_current_only_when_the_index_is_omitted():
    helper = """
        import torch

        def get_device(idx=None):
            suffix = "" if idx is None else f":{idx}"
            return torch.device("cuda" + suffix if torch.cuda.is_available() else "cpu")
    """
    helper = textwrap.dedent(helper)
    omitted = _value_of_last_use(helper + "\nmodel.to(get_device())\n")
    given = _value_of_last_use(helper + "\ndef build(model, gpu):\n    model.to(get_device(gpu))\n")
    assert omitted.current
    assert isinstance(omitted.node, ast.Call) and omitted.node.func.id == "get_device"  # reported at the call
    assert given.kind is Kind.GIVEN


def test_an_mps_branch_first_still_falls_back_to_the_current_device():
    value = _value_of_last_use(
        """
        import torch

        def pick():
            if torch.backends.mps.is_available():
                return torch.device("mps")
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")

        DEVICE = pick()
        model.to(DEVICE)
        """
    )
    assert value.current


def test_a_module_global_from_a_helper_and_an_attribute_set_in_init():
    value = _value_of_last_use(
        """
        import torch

        def select(index=0):
            return "cuda:%d" % index

        class Net:
            def __init__(self):
                self.device = select()

            def forward(self, x):
                return x.to(self.device)
        """
    )
    assert value.gpu0


def test_the_worst_of_several_assignments_wins_and_a_parameter_is_the_callers_choice():
    assert _value_of_last_use('device = "cpu"\nif ok:\n    device = "cuda"\nx.to(device)').current
    assert _value_of_last_use("def f(device):\n    x.to(device)").kind is Kind.GIVEN


def test_evaluation_is_memoised_per_node():
    tree = ast.parse('import torch\nd = "cuda"\nx.to(d)\n')
    module = build_scope(tree, None, "example")
    use = tree.body[-1].value.args[0]
    first = values.evaluate(use, module)
    assert values.evaluate(use, module) is first
