"""Ahead-of-time compilation of kernel launches for CUDA targets, on a machine without a GPU.

:func:`compile_launch` derives a launch's signature, specialization attributes (divisibility by
16, integers equal to 1) and constexprs with the kernel's own Triton binder, the code
``JITFunction.run`` uses on a GPU, so what is compiled here is what a CUDA launch of the same
tensors would compile; then it compiles for ``GPUTarget("cuda", capability, 32)`` and reads the
resource usage from ptxas's verbose log. Kernels must be real JIT functions: run this in a process
without ``TRITON_INTERPRET=1``. Tensors may live on the ``meta`` device (their ``data_ptr`` is the
byte offset of the view, so alignment specializes as for a fresh CUDA allocation).
"""

import contextlib
import io
import re
import tempfile
from dataclasses import dataclass, field

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.compiler.compiler import make_backend
from triton.runtime.jit import JITFunction, create_function_from_signature

from ._launch import Launch


@dataclass
class Specialization:
    """What one launch compiles to: the key parts of Triton's kernel cache key, and the result."""

    kernel: str
    capability: int
    signature: dict
    constexprs: dict
    attrs: dict
    num_warps: int
    num_stages: int
    options: dict = field(repr=False, default_factory=dict)

    @property
    def key(self) -> str:
        return repr(
            (
                self.kernel,
                self.capability,
                sorted(self.signature.items()),
                sorted(self.constexprs.items()),
                sorted(self.attrs.items()),
                sorted(self.options.items()),
            )
        )


@dataclass
class Resources:
    registers: int
    spill_stores: int
    spill_loads: int
    stack: int
    shared: int  # bytes of shared memory the launch requests (Triton's dynamic allocation + static)


def _run_time_options(kernel: JITFunction, backend) -> dict:
    """The options ``JITFunction.run`` adds to a launch's keywords before binding (version dependent)."""
    knobs = triton.knobs
    fields = backend.parse_options({}).__dict__
    added = {"debug": kernel.debug or knobs.runtime.debug}
    for name in ("instrumentation_mode", "fpsan_homomorphic_casts"):
        if name in fields and hasattr(knobs.compilation, name):
            added[name] = getattr(knobs.compilation, name)
    return added


def specialize(launch: Launch, capability: int) -> tuple[Specialization, ASTSource, object]:
    """The signature, constexprs, attributes and options a CUDA launch of ``launch`` compiles with."""
    kernel = launch.kernel
    if not isinstance(kernel, JITFunction):
        raise TypeError(f"{launch.name} is not a JIT function (TRITON_INTERPRET=1 is set?): cannot compile it")
    target = GPUTarget("cuda", capability, 32)
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    kwargs = {**launch.constexprs, **launch.options}
    kwargs.update(_run_time_options(kernel, backend))
    bound_args, specialization, options = binder(*launch.args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound_args, specialization, options)
    spec = Specialization(
        kernel=launch.name,
        capability=capability,
        signature=dict(signature),
        constexprs={_path(k): _show(v) for k, v in constexprs.items()},
        attrs={_path(k): str(v) for k, v in attrs.items()},
        num_warps=options.num_warps,
        num_stages=options.num_stages,
        options={k: v for k, v in options.__dict__.items() if k != "extern_libs"},
    )
    return spec, ASTSource(kernel, signature, constexprs, attrs), (target, options)


def _path(key) -> str:
    return ".".join(str(i) for i in key) if isinstance(key, tuple) else str(key)


def _show(value) -> str:
    return str(getattr(value, "value", value))


_REGS = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")
_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def parse_ptxas_log(log: str, shared: int) -> Resources:
    regs, spills = _REGS.search(log), _SPILL.search(log)
    if regs is None or spills is None:
        raise RuntimeError(f"no resource usage in the ptxas log:\n{log}")
    static_smem = _SMEM.search(log)
    return Resources(
        registers=int(regs.group(1)),
        stack=int(spills.group(1)),
        spill_stores=int(spills.group(2)),
        spill_loads=int(spills.group(3)),
        shared=shared + (int(static_smem.group(1)) if static_smem else 0),
    )


def compile_launch(launch: Launch, capability: int) -> tuple[Specialization, Resources]:
    """Compile ``launch`` for ``sm_{capability}`` (raises Triton's compile error) and measure it.

    Compiles into a fresh cache directory so that ptxas always runs and its ``-v`` log is read.
    """
    spec, src, (target, options) = specialize(launch, capability)
    knobs = triton.knobs
    log = io.StringIO()
    with tempfile.TemporaryDirectory() as cache, knobs.cache.scope(), knobs.nvidia.scope():
        knobs.cache.dir = cache
        knobs.nvidia.dump_ptxas_log = True
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(src, target=target, options=options.__dict__)
    return spec, parse_ptxas_log(log.getvalue(), compiled.metadata.shared)


def describe(launch: Launch, spec: Specialization) -> str:
    """Short text of a specialization: its constexprs, parameters specialized to 1, and the integer
    parameters divisible by 16, and the pointers that are not 16-byte aligned (views at an offset)."""
    names = launch.kernel.arg_names
    given = set(launch.constexprs)
    parts = [f"{k}={v}" for k, v in launch.constexprs.items()]
    ones = [names[int(k)] for k, v in spec.constexprs.items() if names[int(k)] not in given]
    if ones:
        parts.append("==1:" + ",".join(ones))
    div16 = [
        names[int(k)] for k, v in spec.attrs.items() if "16" in v and not spec.signature[names[int(k)]].startswith("*")
    ]
    if div16:
        parts.append("%16:" + ",".join(div16))
    unaligned = [n for i, n in enumerate(names) if spec.signature[n].startswith("*") and "16" not in spec.attrs[str(i)]]
    if unaligned:
        parts.append("unaligned:" + ",".join(unaligned))
    return " ".join(parts)
