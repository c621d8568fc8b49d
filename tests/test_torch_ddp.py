"""torch data parallelism: ``Conv2D`` under ``DistributedDataParallel`` (gloo, 2 processes on loopback).

Two processes started by ``torch.multiprocessing.spawn`` (which pickles the
layer to each of them) train on one half of the batch each; DDP averages the
gradients, which xcorr's autograd functions computed, so after a few steps
the parameters equal those of one process training on the whole batch.
"""

from __future__ import annotations

import os
import pickle
import socket
import time

import numpy as np
import pytest

import xcorr

from matrix import require_module

torch = require_module("torch")
dist = require_module("torch.distributed")

WORLD = 2
STEPS = 4
LR = 0.05
TIMEOUT_S = 300  # two spawned processes that import torch, beside the other test workers


def _data():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.standard_normal((4, 2, 20, 18)))
    y = torch.as_tensor(rng.standard_normal((4, 3, 10, 9)))
    return x, y


def _model():
    # Two xcorr layers: the second one's gradient flows through the first's input gradient.
    return torch.nn.Sequential(
        xcorr.Conv2D(
            (3, 3),
            in_channels=2,
            out_channels=4,
            mode="same",
            boundary="wrap",
            dtype="float64",
            seed=0,
            backend="torch",
        ),
        torch.nn.Tanh(),
        xcorr.Conv2D(
            (3, 2),
            in_channels=4,
            out_channels=3,
            mode="same",
            stride=2,
            dtype="float64",
            seed=1,
            backend="torch",
        ),
    )


def _train(model, x, y):
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        optimizer.step()
    return model


def _worker(rank, pickled, port, out):
    """One DDP process: its half of the batch, the averaged gradients, rank 0 saves the parameters.

    The model comes as a plain pickle: tensors handed to ``spawn`` directly
    travel in shared memory, and both processes would update one copy.
    """
    torch.set_num_threads(1)
    model = pickle.loads(pickled)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        x, y = _data()
        half = x.shape[0] // WORLD
        part = slice(rank * half, (rank + 1) * half)
        _train(ddp, x[part], y[part])
        if rank == 0:
            torch.save(
                {k: v.detach().clone() for k, v in ddp.module.state_dict().items()}, out
            )
        dist.barrier()  # no collective of either rank is still pending at teardown
    finally:
        dist.destroy_process_group()
    # Leave without running the DDP Reducer's destructor: it joins a gloo thread that waits for
    # the GIL the destructor holds (a torch deadlock that hung one CI run here).
    os._exit(0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process_on_the_whole_batch(tmp_path, monkeypatch):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    model = _model()
    # Each process gets a pickle of the layers (their spec and parameters).
    pickled = pickle.dumps(model)
    out = tmp_path / "ddp.pt"
    context = torch.multiprocessing.spawn(
        _worker, args=(pickled, _free_port(), str(out)), nprocs=WORLD, join=False
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            pytest.fail(f"the DDP processes did not finish within {TIMEOUT_S} s")
    ddp_params = torch.load(out, weights_only=True)
    x, y = _data()
    single = _train(_model(), x, y).state_dict()
    assert set(ddp_params) == set(single)
    for name, value in single.items():
        torch.testing.assert_close(
            ddp_params[name], value, rtol=1e-10, atol=1e-12, msg=name
        )
    # And training moved the parameters: the comparison is not between two initial states.
    assert not torch.allclose(single["0.weight"], model[0].weight)
