import pytest

torch = pytest.importorskip("torch")

from devlint.runtime.hub import HUB  # noqa: E402
from devlint.runtime.tracer import Tracer  # noqa: E402


@pytest.fixture(autouse=True)
def no_gpu_reachable(monkeypatch):
    """These tests judge requests that then fail on a CPU build. On a machine with GPUs,
    hide them, so that no test ever reaches one; and check no session outlives its test."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("DEVLINT_DEVICE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("DEVLINT_THOROUGH", raising=False)
    yield
    assert HUB.sessions == (), "a test left a tracer running"


@pytest.fixture(params=["cheap", "thorough"])
def tracing_mode(request, monkeypatch):
    """Run a test in both tracing modes (a Tracer reads DEVLINT_THOROUGH when not told):
    they must report the same code at the same line."""
    monkeypatch.setenv("DEVLINT_THOROUGH", "1" if request.param == "thorough" else "0")
    return request.param


@pytest.fixture
def attempt():
    """Call and return the result, or the exception a CPU build raises once the request is judged."""

    def call(function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (RuntimeError, AssertionError, TypeError, AttributeError, ValueError) as exc:
            return exc

    return call


@pytest.fixture
def tracer():
    with Tracer("cuda:1") as running:
        yield running


@pytest.fixture
def current_device(monkeypatch):
    """Pretend torch initialised CUDA and this thread's current device is `index` (no GPU needed)."""

    def set_to(index: int):
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
        monkeypatch.setattr(torch._C, "_cuda_getDevice", lambda: index, raising=False)

    return set_to


@pytest.fixture
def driver(monkeypatch):
    """Two GPUs, CUDA initialised, current device 0; `contexts` is what the driver reports.
    `torch.cuda.synchronize(d)` creates a context on d (or on the current device)."""
    contexts = set()
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch._C, "_cuda_getDevice", lambda: 0, raising=False)
    monkeypatch.setattr(torch._C, "_cuda_hasPrimaryContext", lambda index: index in contexts, raising=False)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda index: 2048 if index in contexts else 0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: contexts.add(0 if device is None else device))
    return contexts
