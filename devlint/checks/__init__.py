"""The static checks: one module per rule, each a class with `visit_<Node>` methods.

The engine walks each file once and calls every enabled check's visitors. What a
rule says (message, fix grade, API tables) lives in its catalog file under rules/;
the module here holds only the logic that cannot be data.
"""

from __future__ import annotations

from devlint.static.engine import Check


def all_checks() -> list[Check]:
    from devlint.checks import (
        dl001_cuda_without_index,
        dl002_cuda_string_without_index,
        dl003_cuda_type_string,
        dl004_legacy_cuda_constructor,
        dl005_load_without_map_location,
        dl006_current_device_call,
        dl007_dataparallel_without_device_ids,
        dl008_hardcoded_gpu0,
        dl009_late_cuda_visible_devices,
        dl010_default_device_cuda,
        dl011_unplaced_factory,
        dl012_relies_on_cuda_default,
        dl013_distributed_without_device,
        dl014_onnxruntime_without_device_id,
        dl015_tensorrt_current_device,
        dl016_tensorflow_default_gpu,
        dl017_kernel_launch_without_device_guard,
        dl018_runtime_current_device,
        dl019_runtime_gpu0,
    )

    modules = (
        dl001_cuda_without_index,
        dl002_cuda_string_without_index,
        dl003_cuda_type_string,
        dl004_legacy_cuda_constructor,
        dl005_load_without_map_location,
        dl006_current_device_call,
        dl007_dataparallel_without_device_ids,
        dl008_hardcoded_gpu0,
        dl009_late_cuda_visible_devices,
        dl010_default_device_cuda,
        dl011_unplaced_factory,
        dl012_relies_on_cuda_default,
        dl013_distributed_without_device,
        dl014_onnxruntime_without_device_id,
        dl015_tensorrt_current_device,
        dl016_tensorflow_default_gpu,
        dl017_kernel_launch_without_device_guard,
        dl018_runtime_current_device,
        dl019_runtime_gpu0,
    )
    return [module.CHECK for module in modules]
