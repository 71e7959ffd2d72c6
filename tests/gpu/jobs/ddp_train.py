"""A small DDP training job with the classic torchrun mistakes (issue 17), for tests/gpu/test_ddp_gpu.py.

Run with `torchrun --nproc-per-node 2 ddp_train.py`. Each rank trains the same MLP on
its own data for STEPS steps and prints one JSON line: its rank, pid, last loss and mean
step time. It never calls `torch.cuda.set_device(local_rank)`, initialises NCCL
without `device_id`, calls `barrier()` without `device_ids`, and warms CUDA up with one
`.cuda()`: on rank 1 that `.cuda()` lands on the current device, GPU0, rank 0's GPU.

DDP_BACKEND=gloo runs the same job on the CPU (the test's CPU rehearsal). GPU overrides
the GPU index (default: the local rank) for runs that give each rank only its own GPU.
With DDP_PROBE=DIR each rank also writes, while alive, what the driver says it holds.
"""

import datetime
import json
import os
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

STEPS = int(os.environ.get("STEPS", "100"))
WARMUP = 10  # steps not timed
TIMEOUT = datetime.timedelta(seconds=90)  # a collective that hangs fails the job instead


def setup():
    """This rank's GPU index and device, and the process group."""
    gpu = int(os.environ.get("GPU", os.environ["LOCAL_RANK"]))
    if os.environ.get("DDP_BACKEND") == "gloo":
        dist.init_process_group("gloo", timeout=TIMEOUT)
        return gpu, torch.device("cpu")
    dist.init_process_group("nccl", timeout=TIMEOUT)
    return gpu, torch.device("cuda", gpu)


def probe(directory, rank):
    """What the driver says this process holds, written while it is alive (for the test)."""
    import _probe  # tests/gpu/scenarios: NVML or nvidia-smi, without creating a context

    contexts = [bool(torch._C._cuda_hasPrimaryContext(i)) for i in range(torch.cuda.device_count())]
    memory, source = _probe._nvml_memory(os.getpid())
    found = {"pid": os.getpid(), "rank": rank, "contexts": contexts, "memory": memory, "source": source}
    with open(os.path.join(directory, f"rank{rank}.json"), "w") as out:
        json.dump(found, out)


def main():
    gpu, device = setup()
    rank = dist.get_rank()
    if device.type == "cuda":
        torch.zeros(1).cuda()  # warm up CUDA before timing
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1)).to(device)
    model = DistributedDataParallel(model, device_ids=[gpu] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    data = torch.Generator().manual_seed(1 + rank)
    times = []
    for step in range(STEPS):
        started = time.perf_counter()
        x = torch.randn(128, 64, generator=data).to(device)
        y = x.sum(dim=1, keepdim=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = loss.item()
        if step >= WARMUP:
            times.append(time.perf_counter() - started)
    dist.barrier()
    if os.environ.get("DDP_PROBE"):
        probe(os.environ["DDP_PROBE"], rank)
    line = json.dumps({"rank": rank, "pid": os.getpid(), "loss": value, "step_ms": 1000 * sum(times) / len(times)})
    print(line + "\n", end="", flush=True)  # one write: the ranks share the pipe and leave the barrier together
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
