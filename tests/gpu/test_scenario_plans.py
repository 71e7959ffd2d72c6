"""The scenarios' plans, checked without a GPU: what each run must report, so that a run
on a GPU machine checks what it should."""

from scenario_check import SCENARIO_DIR, SCENARIOS, parse


def test_every_leaking_scenario_runs_with_only_the_cpu_allowed_and_keeps_its_leaks():
    for scenario in SCENARIOS:
        two_gpus, cpu_only = parse(scenario), parse(scenario, "cpu")
        if two_gpus.expected:
            assert cpu_only.runs, scenario.name
            assert {line for _, line in two_gpus.expected} <= {line for _, line in cpu_only.expected}, scenario.name


def test_only_the_cpu_allowed_replaces_the_device_and_puts_the_scenario_on_gpu0():
    plan = parse(SCENARIO_DIR / "leak_cuda_method.py", "cpu", thorough=True)
    assert plan.options == ["--device", "cpu", "--thorough"]
    assert plan.environment == {"DEVLINT_SCENARIO_GPU": "0"}
    assert plan.expected == {("DL008", 6), ("DL001", 7)}  # the scenario's own GPU is a leak too


def test_a_line_can_report_another_code_when_only_the_cpu_is_allowed():
    scenario = SCENARIO_DIR / "leak_thread_current_device.py"
    assert parse(scenario).expected == {("DL102", 13)}
    assert parse(scenario, "cpu").expected == {("DL006", 8), ("DL002", 9), ("DL006", 13)}


def test_clean_gpu_scenarios_are_left_out_with_only_the_cpu_allowed():
    runs = {scenario.name for scenario in SCENARIOS if parse(scenario, "cpu").runs}
    assert "clean_cpu_only.py" in runs and "clean_explicit_devices.py" not in runs
    assert parse(SCENARIO_DIR / "clean_explicit_devices.py").runs
