"""Benchmark session: device facts, a device-copy bandwidth measured in the same run, a summary table.

Run with ``pytest benchmarks --benchmark-only``; ``--bench-markdown FILE`` also writes the table.
"""

import platform
import time

import pytest
import torch

RESULTS: list[dict] = []


def pytest_addoption(parser):
    parser.addoption("--bench-markdown", default=None, help="write the summary table to this Markdown file")
    parser.addoption(
        "--bench-max-autotune",
        action="store_true",
        help="also time torch.compile(mode='max-autotune') of the composites (slow to compile)",
    )


def bench_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        synchronize()
        t0 = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


@pytest.fixture(scope="session")
def copy_bandwidth() -> float:
    """Bytes/s of a large device-to-device copy (read + write), the roofline for these memory-bound ops."""
    device = bench_device()
    numel = (1 << 28) if device.type == "cuda" else (1 << 25)  # 1 GiB / 128 MiB of float32
    src = torch.empty(numel, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    seconds = _median_seconds(lambda: dst.copy_(src), 20 if device.type == "cuda" else 5)
    return 2 * src.numel() * src.element_size() / seconds


def device_description() -> str:
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return (
            f"{props.name} ({props.total_memory / 2**30:.0f} GiB, L2 {props.L2_cache_size / 2**20:.0f} MiB), "
            f"CUDA {torch.version.cuda}, driver-visible capability {props.major}.{props.minor}"
        )
    return f"CPU only: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def versions() -> str:
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    import torchvision

    return (
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, triton {triton_version}, "
        f"python {platform.python_version()}"
    )


@pytest.fixture
def record():
    def _record(**row):
        RESULTS.append(row)

    return _record


def _summary_lines(copy_bw: float | None) -> list[str]:
    lines = [f"device: {device_description()}", f"versions: {versions()}"]
    if copy_bw:
        lines.append(f"device copy bandwidth (read+write, same run): {copy_bw / 1e9:.1f} GB/s")
    if not torch.cuda.is_available():
        lines.append(
            "fused kernels not timed: no CUDA device (the Triton kernels run on CUDA only); "
            "the rows are the PyTorch reference composites on the CPU"
        )
    lines += [
        "",
        "| case | shape | dtype | pass | impl | median | GB/s | % of copy | speedup vs eager | vs compiled |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {(r["case"], r["dtype"], r["mode"], r["impl"]): r["seconds"] for r in RESULTS}
    for r in RESULTS:
        key = (r["case"], r["dtype"], r["mode"])
        eager = base.get((*key, "eager"))
        compiled = base.get((*key, "compiled"))
        gbs = r["bytes"] / r["seconds"] / 1e9
        pct = f"{100 * r['bytes'] / r['seconds'] / copy_bw:.0f}%" if copy_bw else "-"
        vs_eager = f"{eager / r['seconds']:.2f}x" if eager and r["impl"] != "eager" else "-"
        vs_compiled = f"{compiled / r['seconds']:.2f}x" if compiled and r["impl"] not in ("eager", "compiled") else "-"
        lines.append(
            f"| {r['case']} | {r['shape']} | {r['dtype']} | {r['mode']} | {r['impl']} | "
            f"{r['seconds'] * 1e6:.1f} us | {gbs:.1f} | {pct} | {vs_eager} | {vs_compiled} |"
        )
    return lines


def pytest_terminal_summary(terminalreporter, config):
    if not RESULTS:
        return
    copy_bw = config._spp_copy_bw if hasattr(config, "_spp_copy_bw") else None
    lines = _summary_lines(copy_bw)
    terminalreporter.write_sep("=", "spp-zoo kernel benchmarks (bytes = the op's minimal traffic)")
    for line in lines:
        terminalreporter.write_line(line)
    path = config.getoption("--bench-markdown")
    if path:
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")


@pytest.fixture(autouse=True)
def _keep_copy_bandwidth(request, copy_bandwidth):
    request.config._spp_copy_bw = copy_bandwidth
