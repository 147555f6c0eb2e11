"""Kernel launches as data: what a launcher runs, and what the ahead-of-time compile check compiles.

Each Triton launcher builds its launches with one function per kernel that turns the tensors
(shapes, dtypes, strides) into a :class:`Launch`; the launcher calls it, and
``kernels._aot`` compiles exactly the same launch for a GPU target without a GPU.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Launch:
    """One kernel launch: ``kernel[grid](*args, **constexprs, num_warps=..., num_stages=...)``."""

    kernel: object  # triton JITFunction (InterpretedFunction under TRITON_INTERPRET=1)
    grid: tuple[int, ...]
    args: tuple
    constexprs: dict = field(default_factory=dict)
    num_warps: int = 4
    num_stages: int = 3

    @property
    def name(self) -> str:
        fn = getattr(self.kernel, "fn", self.kernel)
        return f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"

    @property
    def options(self) -> dict:
        return {"num_warps": self.num_warps, "num_stages": self.num_stages}

    def __call__(self) -> None:
        self.kernel[self.grid](*self.args, **self.constexprs, **self.options)


def run_all(launches: list[Launch]) -> None:
    """Run launches in order (later ones may read what earlier ones wrote)."""
    for launch in launches:
        launch()
