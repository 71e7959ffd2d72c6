"""What each tracing mode sees and what it costs: the default hooks only the calls that can
choose a device; `thorough` also judges every torch call through a function mode."""

import sys

import pytest
import torch
import torch.nn.functional as F
from rt_helpers import next_line, sites
from torch import zeros as zeros_bound_before_tracing  # as in a module imported before tracing began

from devlint.runtime import attribution
from devlint.runtime.hub import HUB
from devlint.runtime.tracer import Tracer


def _devlint_calls(operation) -> int:
    """How many of devlint's Python functions run during `operation()`."""
    calls = []

    def profile(frame, event, arg):
        if event == "call" and attribution.kind(frame.f_code.co_filename) == "devlint":
            calls.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        operation()
    finally:
        sys.setprofile(None)
    return len(calls)


def _follow_their_inputs(x, w):
    """Arithmetic, views, reductions, nn.functional: ops that cannot choose a device."""
    return torch.cat([F.relu(x + 1) * 2 @ w, x.view(4, 4).t()]).sum(dim=0).mean()


@pytest.mark.parametrize("thorough", [False, True])
def test_ops_that_follow_their_inputs_run_no_devlint_code_by_default(thorough):
    x, w = torch.ones(4, 4), torch.eye(4)
    with Tracer("cuda:1", thorough=thorough):
        devlint_calls = _devlint_calls(lambda: _follow_their_inputs(x, w))
    assert (devlint_calls > 0) is thorough


def test_the_default_device_hook_runs_only_while_a_default_device_is_set(attempt):
    x = torch.ones(2)
    with Tracer("cuda:1") as tracer:
        assert torch._C._len_torch_function_stack() == 0 and _devlint_calls(lambda: x + 1) == 0
        with torch.device("cuda"):  # torch's own context: every op runs its Python hook, and devlint's with it
            assert _devlint_calls(lambda: x + 1) > 0
            line = next_line()
            attempt(lambda: torch.ones(2))
        assert torch._C._len_torch_function_stack() == 0 and _devlint_calls(lambda: x + 1) == 0
        torch.set_default_device("cuda:1")
        try:
            assert _devlint_calls(lambda: x + 1) > 0
        finally:
            torch.set_default_device(None)
        assert _devlint_calls(lambda: x + 1) == 0
    assert sites(tracer.leaks()) == [("DL010", line)]


@pytest.mark.parametrize("thorough", [False, True])
def test_a_factory_bound_before_tracing_is_seen_only_when_thorough_or_under_a_default_device(thorough, attempt):
    with Tracer("cuda:1", thorough=thorough) as tracer:
        line = next_line()
        attempt(lambda: zeros_bound_before_tracing(2, device="cuda"))
        with torch.device("cuda"):
            attempt(lambda: zeros_bound_before_tracing(2))  # the default device's hook sees every binding
    assert sites(tracer.leaks()) == ([("DL002", line)] if thorough else []) + [("DL010", line + 2)]


@pytest.mark.parametrize("thorough", [False, True])
def test_a_factory_bound_while_tracing_is_judged_then_passes_through(thorough, attempt):
    namespace = {}
    with Tracer("cuda:1", thorough=thorough) as tracer:
        exec("from torch import zeros", namespace)  # a module imported under `devlint run`
        zeros = namespace["zeros"]
        line = next_line()
        attempt(lambda: zeros(2, device="cuda"))
    assert sites(tracer.leaks()) == [("DL002", line)]
    assert zeros is not torch.zeros and torch.equal(zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64))
    with Tracer("cuda:1", thorough=thorough) as again:  # the old binding is judged once, not once per install
        attempt(lambda: zeros(2, device="cuda"))
    assert [leak.count for leak in again.leaks()] == [1]


@pytest.mark.parametrize("thorough", [False, True])
def test_calls_through_the_class_are_seen_only_when_thorough(thorough, attempt):
    with Tracer("cuda:1", thorough=thorough) as tracer:
        line = next_line()
        attempt(lambda: torch.Tensor.to(torch.ones(2), "cuda"))
    assert sites(tracer.leaks()) == ([("DL002", line)] if thorough else [])


class Tagged(torch.Tensor):
    """A tensor subclass that keeps the functions torch hands its `__torch_function__`."""

    handed: list = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.handed.append(func)
        return super().__torch_function__(func, types, args, kwargs)


def test_torch_function_handlers_are_handed_torchs_own_methods(tracing_mode):
    Tagged.handed.clear()
    with Tracer("cuda:1"):
        assert torch.Tensor.to is torch._C.TensorBase.to  # looked up on the class: torch's own
        moved = torch.ones(2).as_subclass(Tagged).to(torch.float64)
        lazy = torch.nn.LazyLinear(2).to("cpu")  # its uninitialized parameters allow only torch's own `.to`
    assert type(moved) is Tagged and torch._C.TensorBase.to in Tagged.handed
    assert isinstance(lazy.weight, torch.nn.parameter.UninitializedParameter)


def _traced_function(x):
    return torch.zeros(4) + x.to(torch.float64) + torch.zeros_like(x)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torchscript_compiles_calls_to_wrapped_factories(tracing_mode):
    x = torch.ones(4)
    with Tracer("cuda:1"):
        scripted = torch.jit.script(_traced_function)
        assert torch.equal(scripted(x), _traced_function(x))
    assert torch.equal(scripted(x), _traced_function(x))


def test_the_results_are_the_same_as_without_the_tracer(tracing_mode):
    def train_step():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).to("cpu")
        inputs = torch.randn(4, 8).to(torch.float32)
        loss = model(inputs).square().mean() + torch.zeros(1).sum() + inputs.new_ones(1).sum()
        loss.backward()
        return loss.detach(), [p.grad for p in model.parameters()]

    expected_loss, expected_grads = train_step()
    with Tracer("cuda:1"):
        loss, grads = train_step()
    assert torch.equal(loss, expected_loss) and all(torch.equal(a, b) for a, b in zip(grads, expected_grads))


def test_a_judged_call_that_raises_leaves_the_tracer_judging(tracing_mode, attempt):
    with Tracer("cuda:1") as tracer:
        with pytest.raises((RuntimeError, AssertionError)):
            torch.zeros(2, device="cuda:1")  # allowed, judged, then fails on a CPU build
        assert not HUB.thread.busy
        line = next_line()
        attempt(lambda: torch.ones(1).cuda())
    assert sites(tracer.leaks()) == [("DL001", line)]


def test_a_thorough_session_inside_a_default_one_adds_the_mode_for_its_span(attempt):
    stack = torch._C._len_torch_function_stack()
    with Tracer("cuda:1") as outer:
        with Tracer("cuda:1", thorough=True) as inner:
            assert torch._C._len_torch_function_stack() == stack + 1
            line = next_line()
            attempt(lambda: zeros_bound_before_tracing(2, device="cuda"))
        assert torch._C._len_torch_function_stack() == stack
        attempt(lambda: zeros_bound_before_tracing(2, device="cuda"))  # the default no longer sees it
    assert sites(inner.leaks()) == sites(outer.leaks()) == [("DL002", line)]
    assert [leak.count for leak in outer.leaks()] == [1]
