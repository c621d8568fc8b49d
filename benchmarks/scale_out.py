"""``python -m benchmarks.scale_out``: xcorr on a Dask cluster and on several JAX devices.

Dask (``dask.distributed`` ``LocalCluster``, worker processes with one thread
each, loopback only):

* larger than memory: a float32 image stored in zarr, at least 3x the memory
  limit of the workers, correlated into another zarr store; the wall time,
  throughput and each worker's peak resident memory;
* 1, 2 and 4 workers on one image: throughput (megapixels per second) and peak
  resident memory per worker, and the in-memory numpy call on the same image
  in the same run: the ratio is the cost of chunking, halos and scheduling.
  The halo overhead is also counted exactly: the input pixels the blocks
  read over the pixels of the image.

JAX: one data-parallel training step of a ``Conv2D`` (batch sharded over the
devices, parameters replicated) on 1, 2 and 4 host devices forced with
``XLA_FLAGS=--xla_force_host_platform_device_count``, each in its own process:
the median step time and the bytes the compiled step communicates (the result
sizes of its collectives, read from the HLO), against the same model written
with ``lax.conv_general_dilated``.

Workers and forced devices share this machine's cores: with fewer cores than
workers or devices, the numbers show the overhead of scaling out, not a
speed-up. Results print as Markdown and, with ``--json PATH``, as JSON.

    python -m benchmarks.scale_out                  # a 2 GB image; a few minutes on 2 cores
    python -m benchmarks.scale_out --side 8192 --memory-limit 100MB --workers 1,2
    python -m benchmarks.scale_out --no-dask --json scale.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from ._timing import cores, cpu_model, load, load_average, machine

KERNEL = (5, 5)
OPTIONS = {"mode": "same", "boundary": "symm"}
# Bytes per element of HLO element types (the collectives' result shapes).
HLO_BYTES = {
    "f16": 2,
    "bf16": 2,
    "f32": 4,
    "f64": 8,
    "s32": 4,
    "s64": 8,
    "u32": 4,
    "pred": 1,
    "c64": 8,
    "c128": 16,
}
COLLECTIVES = (
    "all-reduce",
    "all-gather",
    "reduce-scatter",
    "all-to-all",
    "collective-permute",
)


class Report:
    """Markdown tables on stdout; every row (numbers unrounded) kept for ``--json``."""

    def __init__(self):
        self.tables: list[dict] = []
        self.notes: list[str] = []

    def text(self, line: str = "") -> None:
        print(line, flush=True)

    def note(self, line: str) -> None:
        self.notes.append(line)
        self.text(f"\n{line}")

    def table(
        self,
        key: str,
        title: str,
        columns: list[str],
        rows: list[tuple[list[str], dict]],
    ) -> None:
        self.tables.append(
            {
                "key": key,
                "title": title,
                "columns": columns,
                "rows": [values for _, values in rows],
            }
        )
        self.text(f"\n### {title}\n")
        self.text("| " + " | ".join(columns) + " |")
        self.text(
            "|"
            + "|".join("---" if i == 0 else "---:" for i in range(len(columns)))
            + "|"
        )
        for cells, _ in rows:
            self.text("| " + " | ".join(cells) + " |")


def parse_bytes(text: str) -> int:
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMG]?i?B)?\s*", text, flags=re.IGNORECASE)
    if match is None:
        msg = f"a size like 400MB or 1GiB; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    units = {
        "": 1,
        "b": 1,
        "kb": 1e3,
        "mb": 1e6,
        "gb": 1e9,
        "kib": 2**10,
        "mib": 2**20,
        "gib": 2**30,
    }
    return int(float(match.group(1)) * units[(match.group(2) or "").lower()])


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


# --- Dask -----------------------------------------------------------------------------


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _start_sampling(dask_worker, interval: float = 0.02) -> int:
    """In a worker: a thread that keeps the largest resident memory seen since the last ``_start_sampling``.

    (``getrusage``'s peak would do, but a spawned worker inherits its
    parent's: the benchmark's own peak, not the worker's.) The state lives
    on the worker object: this module runs as ``__main__``, so its functions
    reach the workers by value, without shared module globals.
    """
    import threading

    dask_worker.xcorr_peak_rss = _rss()
    if getattr(dask_worker, "xcorr_sampler", None) is None:

        def sample():
            while True:
                dask_worker.xcorr_peak_rss = max(dask_worker.xcorr_peak_rss, _rss())
                time.sleep(interval)

        dask_worker.xcorr_sampler = threading.Thread(
            target=sample, daemon=True, name="xcorr-rss-sampler"
        )
        dask_worker.xcorr_sampler.start()
    return dask_worker.xcorr_peak_rss


def _peak_rss(dask_worker) -> int:
    """In a worker: the largest resident memory sampled since ``_start_sampling``, the current one included."""
    return max(dask_worker.xcorr_peak_rss, _rss())


@contextlib.contextmanager
def cluster(workers: int, memory_limit: int):
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=workers,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=memory_limit,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


def write_image(path: str, side: int, chunk: int) -> None:
    """A float32 ``side x side`` image of random values into a zarr store, chunk by chunk."""
    import dask.array as da

    image = da.random.default_rng(0).standard_normal(
        (side, side), chunks=chunk, dtype=np.float32
    )
    image.to_zarr(path, overwrite=True)


def _warm_up() -> None:
    """The blocks' code path on a small image, in this process (a worker), with the sync scheduler."""
    import dask.array as da

    import xcorr

    x = da.from_array(np.ones((600, 600), np.float32), chunks=256)
    k = da.from_array(np.ones(KERNEL, np.float32))
    xcorr.corr2d(x, k, method="direct", **OPTIONS).compute(scheduler="sync")


def correlate_store(client, source: str, target: str) -> dict:
    """xcorr from one zarr store into another on ``client``'s cluster; time and memory per worker."""
    import dask.array as da

    import xcorr

    x = da.from_zarr(source)
    k = da.from_array(
        np.random.default_rng(1).standard_normal(KERNEL).astype(np.float32)
    )
    # Warm up each worker (imports, numba's kernels from its cache) outside the timing.
    client.run(_warm_up)
    baseline = client.run(_start_sampling)
    y = xcorr.corr2d(x, k, method="direct", **OPTIONS)
    start = time.perf_counter()
    da.to_zarr(y, target, overwrite=True, compute=False).compute()
    seconds = time.perf_counter() - start
    peaks = client.run(_peak_rss)
    return {
        "seconds": seconds,
        "pixels": math.prod(x.shape),
        "megapixels_per_s": math.prod(x.shape) / seconds / 1e6,
        "peak_rss_per_worker": sorted(peaks.values()),
        "rss_after_warm_up": sorted(baseline.values()),
        "chunks": x.numblocks,
    }


def halo_overhead(shape, chunk: int) -> float:
    """Input pixels the blocks read (their windows, halos included) over the pixels of the image."""
    import dask.array as da

    from xcorr._compat import array_namespace
    from xcorr._options import Options, plan
    from xcorr.backends.dask import _Tiles

    options = Options.parse(**OPTIONS)
    x = da.zeros(shape, chunks=chunk, dtype=np.float32)
    geometry = plan(shape, KERNEL, options)
    tiles = _Tiles(array_namespace(x), x, geometry, options)
    rows, cols = geometry.rows, geometry.cols
    read = sum(
        ((r1 - 1) * rows.step + rows.span - r0 * rows.step)
        * ((c1 - 1) * cols.step + cols.span - c0 * cols.step)
        for r0, r1, c0, c1 in tiles.blocks()
    )
    return read / math.prod(shape)


def numpy_in_memory(source: str, chunk: int, repeats: int) -> dict:
    """numpy's in-memory call, and the same image as an in-memory dask array on the threaded scheduler."""
    import dask.array as da
    import zarr

    import xcorr

    x = zarr.open_array(source, mode="r")[...]
    k = np.random.default_rng(1).standard_normal(KERNEL).astype(np.float32)
    xd, kd = da.from_array(x, chunks=chunk), da.from_array(k)
    xcorr.corr2d(x[:256, :256], k, method="direct", **OPTIONS)
    xcorr.corr2d(xd[:600, :600].rechunk(256), kd, method="direct", **OPTIONS).compute(
        scheduler="threads"
    )
    times: dict[str, list[float]] = {"numpy": [], "dask": []}
    for _ in range(repeats):
        start = time.perf_counter()
        xcorr.corr2d(x, k, method="direct", **OPTIONS)
        times["numpy"].append(time.perf_counter() - start)
        start = time.perf_counter()
        xcorr.corr2d(xd, kd, method="direct", **OPTIONS).compute(scheduler="threads")
        times["dask"].append(time.perf_counter() - start)
    seconds = float(np.median(times["numpy"]))
    threaded = float(np.median(times["dask"]))
    return {
        "seconds": seconds,
        "megapixels_per_s": x.size / seconds / 1e6,
        "dask_threads_seconds": threaded,
        "dask_threads_ratio": threaded / seconds,
    }


def dask_section(report: Report, args, scratch: str) -> None:
    big_side = args.side
    memory_limit = args.memory_limit
    chunk = args.chunk
    image_bytes = big_side * big_side * 4
    source, target = (
        os.path.join(scratch, "image.zarr"),
        os.path.join(scratch, "out.zarr"),
    )
    report.text(
        f"\nWriting a {big_side}x{big_side} float32 image ({mb(image_bytes)}) to zarr ..."
    )
    write_image(source, big_side, chunk)
    with cluster(2, memory_limit) as client:
        big = correlate_store(client, source, target)
    shutil.rmtree(target, ignore_errors=True)
    cells = [
        f"{big_side}² float32 ({mb(image_bytes)})",
        f"2 x {mb(memory_limit)}",
        f"{image_bytes / memory_limit:.1f}x",
        f"{big['seconds']:.1f} s",
        f"{big['megapixels_per_s']:.0f}",
        ", ".join(mb(p) for p in big["peak_rss_per_worker"]),
    ]
    report.table(
        "dask_larger_than_memory",
        f"Dask: larger than memory, zarr to zarr ({KERNEL[0]}x{KERNEL[1]} kernel, {OPTIONS['mode']}, "
        f"{OPTIONS['boundary']}, chunks {chunk}²)",
        [
            "image",
            "workers x memory limit",
            "image / limit",
            "wall time",
            "MP/s",
            "peak RSS per worker",
        ],
        [
            (
                cells,
                {
                    "side": big_side,
                    "image_bytes": image_bytes,
                    "memory_limit": memory_limit,
                    **big,
                },
            )
        ],
    )

    side = args.scaling_side
    small_source = os.path.join(scratch, "scaling.zarr")
    write_image(small_source, side, chunk)
    rows = []
    numpy_run = numpy_in_memory(small_source, chunk, args.repeats)
    overhead = halo_overhead((side, side), chunk)
    for workers in args.workers:
        runs = []
        with cluster(workers, args.scaling_memory_limit) as client:
            for _ in range(args.repeats):
                runs.append(correlate_store(client, small_source, target))
                shutil.rmtree(target, ignore_errors=True)
        best = min(runs, key=lambda r: r["seconds"])
        median = float(np.median([r["seconds"] for r in runs]))
        peak = max(p for r in runs for p in r["peak_rss_per_worker"])
        values = {
            "workers": workers,
            "seconds_median": median,
            "seconds_best": best["seconds"],
            "megapixels_per_s": side * side / median / 1e6,
            "peak_rss_per_worker_max": peak,
            "numpy_seconds": numpy_run["seconds"],
            "ratio_to_numpy": median / numpy_run["seconds"],
        }
        cells = [
            str(workers),
            f"{median:.2f} s",
            f"{values['megapixels_per_s']:.0f}",
            mb(peak),
            f"{values['ratio_to_numpy']:.2f}",
        ]
        rows.append((cells, values))
    report.table(
        "dask_workers",
        f"Dask: {side}² float32 zarr to zarr on {', '.join(map(str, args.workers))} workers (one thread each; numpy in memory: "
        f"{numpy_run['seconds']:.2f} s, {numpy_run['megapixels_per_s']:.0f} MP/s)",
        [
            "workers",
            "wall time",
            "MP/s",
            "peak RSS per worker",
            "time / numpy in memory",
        ],
        rows,
    )
    report.note(
        f"Halo overhead: the blocks of {chunk}² chunks read {100 * (overhead - 1):.2f}% more input pixels "
        f"than the image holds ({KERNEL[0]}x{KERNEL[1]} kernel). The same in-memory image as a dask array "
        f"on the threaded scheduler (no cluster, no zarr): {numpy_run['dask_threads_seconds']:.2f} s, "
        f"{numpy_run['dask_threads_ratio']:.2f}x numpy's in-memory call. This machine has {cores()} cores: "
        "more workers than cores share them."
    )
    report.tables[-1]["halo_overhead"] = overhead


# --- JAX --------------------------------------------------------------------------------


def collective_bytes(hlo: str) -> dict[str, int]:
    """Bytes produced by each kind of collective in compiled HLO text (its result shapes, per device)."""
    totals = dict.fromkeys(COLLECTIVES, 0)
    for line in hlo.splitlines():
        match = re.match(r"\s*(?:ROOT )?%\S+ = (.*?) ([a-z-]+?)(?:-start)?\(", line)
        if match is None or match.group(2) not in COLLECTIVES:
            continue
        for dtype, dims in re.findall(r"\b([a-z]+\d*)\[([\d,]*)\]", match.group(1)):
            if dtype in HLO_BYTES:
                totals[match.group(2)] += HLO_BYTES[dtype] * math.prod(
                    int(d) for d in dims.split(",") if d
                )
    return totals


def jax_worker(devices: int, repeats: int) -> dict:
    """One process with ``devices`` forced host devices: the xcorr and lax steps, timed and inspected."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    import xcorr

    assert len(jax.devices()) == devices, jax.devices()
    batch, c_in, c_out, side = 16, 8, 16, 64
    layer = xcorr.Conv2D(
        (3, 3),
        in_channels=c_in,
        out_channels=c_out,
        mode="same",
        backend="jax",
        dtype="float32",
        seed=0,
    )
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, c_in, side, side)), dtype=jnp.float32)
    y = jnp.asarray(rng.standard_normal((batch, c_out, side, side)), dtype=jnp.float32)
    params = {"weight": layer.weight, "bias": layer.bias}

    def xcorr_model(p, x):
        return layer.replace(weight=p["weight"], bias=p["bias"])(x)

    def lax_model(p, x):
        out = jax.lax.conv_general_dilated(
            x, p["weight"], (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW")
        )
        return out + p["bias"][:, None, None]

    mesh = Mesh(np.array(jax.devices()), ("batch",))
    xs = jax.device_put(x, NamedSharding(mesh, PartitionSpec("batch")))
    ys = jax.device_put(y, NamedSharding(mesh, PartitionSpec("batch")))
    ps = jax.device_put(params, NamedSharding(mesh, PartitionSpec()))
    results = {}
    for name, model in (("xcorr", xcorr_model), ("lax", lax_model)):

        @jax.jit
        def step(p, x, y, model=model):
            loss, grads = jax.value_and_grad(
                lambda p: jnp.mean((model(p, x) - y) ** 2)
            )(p)
            return jax.tree.map(lambda a, g: a - 0.01 * g, p, grads), loss

        hlo = step.lower(ps, xs, ys).compile().as_text()
        new, loss = step(ps, xs, ys)
        jax.block_until_ready(new)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(step(ps, xs, ys))
            times.append(time.perf_counter() - start)
        results[name] = {
            "step_seconds": float(np.median(times)),
            "collective_bytes": collective_bytes(hlo),
            "loss": float(loss),
        }
    return results


def jax_section(report: Report, args) -> None:
    rows = []
    for devices in args.devices:
        env = dict(
            os.environ,
            XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
            JAX_PLATFORMS="cpu",
        )
        command = [
            sys.executable,
            "-m",
            "benchmarks.scale_out",
            "--jax-worker",
            str(devices),
        ]
        command += ["--repeats", str(max(args.repeats, 5))]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            report.note(
                f"jax with {devices} devices failed: {done.stderr.strip()[-2000:]}"
            )
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        ours, theirs = result["xcorr"], result["lax"]
        values = {"devices": devices, **{f"xcorr_{k}": v for k, v in ours.items()}}
        values.update({f"lax_{k}": v for k, v in theirs.items()})
        values["ratio"] = ours["step_seconds"] / theirs["step_seconds"]
        cells = [
            str(devices),
            f"{1e3 * ours['step_seconds']:.1f} ms",
            f"{1e3 * theirs['step_seconds']:.1f} ms",
            f"{values['ratio']:.2f}",
            f"{sum(ours['collective_bytes'].values())} B",
            f"{ours['collective_bytes']['all-gather']} B",
            f"{sum(theirs['collective_bytes'].values())} B",
        ]
        rows.append((cells, values))
    report.table(
        "jax_data_parallel",
        "JAX: data-parallel Conv2D training step (batch 16x8x64², 8->16 channels, 3x3, sharded over "
        "forced host devices; parameters replicated)",
        [
            "devices",
            "xcorr step",
            "lax step",
            "ratio",
            "xcorr bytes communicated",
            "of which all-gather",
            "lax bytes",
        ],
        rows,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale_out", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--side", type=int, default=22000, help="side of the larger-than-memory image"
    )
    parser.add_argument(
        "--memory-limit",
        type=parse_bytes,
        default=parse_bytes("500MB"),
        help="per worker",
    )
    parser.add_argument(
        "--chunk", type=int, default=2048, help="zarr and dask chunk side"
    )
    parser.add_argument(
        "--scaling-side",
        type=int,
        default=8192,
        help="image side of the 1/2/4-worker table",
    )
    parser.add_argument(
        "--scaling-memory-limit", type=parse_bytes, default=parse_bytes("1GB")
    )
    parser.add_argument(
        "--workers", default="1,2,4", type=lambda s: [int(n) for n in s.split(",")]
    )
    parser.add_argument(
        "--devices", default="1,2,4", type=lambda s: [int(n) for n in s.split(",")]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--no-jax", action="store_true")
    parser.add_argument(
        "--scratch", help="directory for the zarr stores (default: a temporary one)"
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write the rows to this JSON file"
    )
    parser.add_argument("--jax-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jax_worker is not None:
        print(json.dumps(jax_worker(args.jax_worker, args.repeats)))
        return 0
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = load_average()
    report = Report()
    report.text(f"## xcorr scale-out benchmarks, {started.date().isoformat()}\n")
    report.text(f"Machine: {machine()}; {load()} at the start.")
    if not args.no_dask:
        scratch = args.scratch or tempfile.mkdtemp(prefix="xcorr-scale-")
        try:
            dask_section(report, args, scratch)
        finally:
            if args.scratch is None:
                shutil.rmtree(scratch, ignore_errors=True)
    if not args.no_jax:
        jax_section(report, args)
    report.text(f"\n{load()} at the end.")
    if args.json:
        import importlib.metadata as md

        versions = {}
        for name in ("dask", "distributed", "zarr", "jax", "numpy", "numba"):
            with contextlib.suppress(md.PackageNotFoundError):
                versions[name] = md.version(name)
        result = {
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "command": [
                "python",
                "-m",
                "benchmarks.scale_out",
                *(sys.argv[1:] if argv is None else argv),
            ],
            "machine": {
                "cpu": cpu_model(),
                "cores": cores(),
                "platform": platform.platform(),
            },
            "load_average": {"start": load_start, "end": load_average()},
            "python": platform.python_version(),
            "versions": versions,
            "tables": report.tables,
            "notes": report.notes,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
