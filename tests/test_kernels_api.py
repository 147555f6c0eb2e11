"""The public kernel API: argument errors, modules, operator registration, compile/export, dispatch."""

import pytest
import torch
from _helpers import assert_same, make_input
from torch import nn

import kernels
import kernels._runtime as runtime
from kernels import reference

X = torch.randn(2, 3, 8, 8)
ROIS = torch.tensor([[0.0, 1, 1, 6, 6], [1.0, 0, 2, 3, 7]])


# --------------------------------------------------------------------------- argument errors
@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: kernels.spatial_pyramid_pool(X[0]), ValueError, "x must be 4-D"),
        (lambda: kernels.spatial_pyramid_pool([1, 2]), TypeError, "x must be a torch.Tensor"),
        (lambda: kernels.spatial_pyramid_pool(X.long()), TypeError, "x must be float16"),
        (lambda: kernels.spatial_pyramid_pool(X, ()), ValueError, "levels must not be empty"),
        (lambda: kernels.spatial_pyramid_pool(X, (2, 0)), ValueError, "levels must all be >= 1"),
        (lambda: kernels.spatial_pyramid_pool(X, (2.0,)), TypeError, "levels must contain ints"),
        (lambda: kernels.spatial_pyramid_pool(X, 4), TypeError, "levels must be a sequence"),
        (lambda: kernels.spatial_pyramid_pool(X, (2,), "sum"), ValueError, "mode must be 'max' or 'avg'"),
        (lambda: kernels.spatial_pyramid_pool(X[:, :, :0]), ValueError, "x must have non-empty spatial dims"),
        (lambda: kernels.upsample_concat(X, X), TypeError, "pooled must be a list"),
        (lambda: kernels.upsample_concat(X, [X[0]]), ValueError, "pooled[0] must be 4-D"),
        (lambda: kernels.upsample_concat(X, [X.double()]), TypeError, "pooled[0] has dtype"),
        (lambda: kernels.upsample_concat(X, [X[:1]]), ValueError, "pooled[0] has batch size 1"),
        (lambda: kernels.upsample_concat(X, [X], align_corners=1), TypeError, "align_corners must be a bool"),
        (lambda: kernels.roi_spp(X, ROIS[:, :4]), ValueError, "boxes must be a (K, 5) tensor"),
        (lambda: kernels.roi_spp(X, ROIS.long()), TypeError, "boxes must be a floating-point tensor"),
        (lambda: kernels.roi_spp(X, [ROIS[:, 1:].int()]), TypeError, "boxes[0] must be a floating-point tensor"),
        (lambda: kernels.roi_spp(X, [ROIS]), ValueError, "boxes[0] must have shape (L, 4)"),
        (lambda: kernels.roi_spp(X, [ROIS[:, 1:]] * 3), ValueError, "boxes is a list of 3 tensors"),
        (lambda: kernels.roi_spp(X, "boxes"), TypeError, "boxes must be a (K, 5) tensor"),
        (lambda: kernels.roi_spp(X, torch.tensor([[2.0, 0, 0, 4, 4]])), ValueError, "batch index out of range"),
        (lambda: kernels.roi_spp(X, torch.tensor([[-1.0, 0, 0, 4, 4]])), ValueError, "batch index out of range"),
        (lambda: kernels.roi_spp(X, torch.tensor([[0.0, 0, float("nan"), 4, 4]])), ValueError, "boxes must be finite"),
        (lambda: kernels.roi_spp(X, ROIS, levels=(6, -1)), ValueError, "levels must all be >= 1"),
        (lambda: kernels.roi_spp(X, ROIS, spatial_scale=0.0), ValueError, "spatial_scale must be a positive"),
        (lambda: kernels.roi_spp(X, ROIS, spatial_scale="1"), TypeError, "spatial_scale must be a float"),
        (lambda: kernels.sppf(X, 4), ValueError, "kernel_size must be odd and >= 1"),
        (lambda: kernels.sppf(X, 0), ValueError, "kernel_size must be odd and >= 1"),
        (lambda: kernels.sppf(X, 5.0), TypeError, "kernel_size must be an int"),
        (lambda: kernels.sppf(X.int()), TypeError, "x must be float16"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        call()


def test_inputs_on_another_device():
    with pytest.raises(ValueError, match="boxes is on meta but features is on cpu"):
        kernels.roi_spp(X, ROIS.to("meta"))
    with pytest.raises(ValueError, match=r"pooled\[0\] is on meta but x is on cpu"):
        kernels.upsample_concat(X, [X.to("meta")])


def test_out_of_range_batch_index_checked_on_kernel_path(device):
    with pytest.raises(ValueError, match="batch index out of range"):
        kernels.roi_spp(X.to(device), torch.tensor([[5.0, 0, 0, 4, 4]], device=device))


# --------------------------------------------------------------------------- modules
def test_module_reprs_and_sizes():
    assert repr(kernels.SpatialPyramidPool((6, 3, 2, 1))) == "SpatialPyramidPool(levels=(6, 3, 2, 1), mode='max')"
    assert repr(kernels.RoISPP(spatial_scale=0.0625)) == "RoISPP(levels=(6, 3, 2, 1), spatial_scale=0.0625)"
    assert repr(kernels.SPPF(5)) == "SPPF(kernel_size=5)"
    assert repr(kernels.UpsampleConcat(True)) == "UpsampleConcat(align_corners=True)"
    assert kernels.SpatialPyramidPool((6, 3, 2, 1)).output_features(256) == 12800
    assert kernels.RoISPP().output_features(256) == 12800
    with pytest.raises(ValueError, match="kernel_size"):
        kernels.SPPF(2)


def _modules_and_inputs():
    x = torch.randn(2, 3, 9, 7)
    return [
        (kernels.SpatialPyramidPool((4, 2, 1)), (x,)),
        (kernels.SpatialPyramidPool((3, 1), mode="avg"), (x,)),
        (kernels.UpsampleConcat(), (x, [torch.randn(2, 2, 3, 3)])),
        (kernels.RoISPP((3, 1), 0.5), (x, torch.tensor([[1.0, 0, 0, 9, 9]]))),
        (kernels.SPPF(5), (x,)),
    ]


@pytest.mark.parametrize("index", range(5))
def test_modules_script_to_the_reference_path(index, tmp_path):
    module, inputs = _modules_and_inputs()[index]
    scripted = torch.jit.script(module)
    path = tmp_path / "m.pt"
    scripted.save(str(path))
    loaded = torch.jit.load(str(path))
    torch.testing.assert_close(loaded(*inputs), module(*inputs))


@pytest.mark.parametrize(
    "fn, args",
    [
        (reference.spatial_pyramid_pool, (X, [4, 2, 1], "max")),
        (reference.upsample_concat, (X, [torch.randn(2, 2, 3, 3)], True)),
        (reference.roi_spp, (X, ROIS, [3, 1], 0.5)),
        (reference.roi_spp_torch, (X, ROIS, [3, 1], 0.5)),
        (reference.sppf, (X, 5)),
    ],
)
def test_reference_functions_are_scriptable(fn, args):
    scripted = torch.jit.script(fn)
    assert_same(scripted(*args), fn(*args))


# --------------------------------------------------------------------------- operator registration
def _op_cases(device):
    x = make_input((2, 3, 7, 6), torch.float32, device, ties=False).requires_grad_(True)
    p = [make_input((2, 2, n, n), torch.float32, device, ties=False).requires_grad_(True) for n in (1, 3)]
    rois = torch.tensor([[0.0, 0, 0, 5, 4], [1.0, 2, 1, 4, 6]], device=device)
    ops = torch.ops.spp_zoo
    return [
        (ops.spatial_pyramid_pool.default, (x, [3, 2, 1], "max")),
        (ops.spatial_pyramid_pool.default, (x, [3, 2, 1], "avg")),
        (ops.upsample_concat.default, (x, p, False)),
        (ops.roi_spp.default, (x, rois, [3, 1], 1.0)),
        (ops.sppf.default, (x, 5)),
    ]


@pytest.mark.parametrize("index", range(5))
def test_opcheck(device, index):
    op, args = _op_cases(device)[index]
    torch.library.opcheck(op, args)


def test_ops_registered_under_spp_zoo():
    for name in ("spatial_pyramid_pool", "upsample_concat", "roi_spp", "sppf"):
        assert hasattr(torch.ops.spp_zoo, name) and hasattr(torch.ops.spp_zoo, name + "_backward")


class AllOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.spp = kernels.SpatialPyramidPool((3, 2, 1))
        self.ppm = kernels.SpatialPyramidPool((1, 2), mode="avg")
        self.up = kernels.UpsampleConcat()
        self.roi = kernels.RoISPP((2, 1), 0.5)
        self.sppf = kernels.SPPF(3)

    def forward(self, x, rois):
        n, c = x.shape[:2]
        pooled = self.ppm(x)
        levels = [pooled[:, :c].reshape(n, c, 1, 1), pooled[:, c:].reshape(n, c, 2, 2)]
        y = self.sppf(self.up(x, levels))
        return self.spp(y).sum() + self.roi(y, rois).sum() * 2 + y.mean()


def test_torch_compile_fullgraph_forward_backward(device):
    torch._dynamo.reset()
    model = AllOps()
    x = make_input((2, 2, 6, 5), torch.float32, device, ties=False)
    rois = torch.tensor([[0.0, 0, 0, 7, 7], [1.0, 2, 1, 9, 6]], device=device)
    compiled = torch.compile(model, fullgraph=True)
    xe, xc = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    eager_out = model(xe, rois)
    compiled_out = compiled(xc, rois)
    eager_out.backward()
    compiled_out.backward()
    torch.testing.assert_close(compiled_out, eager_out)
    torch.testing.assert_close(xc.grad, xe.grad)


def test_torch_export_keeps_one_node_per_op():
    exported = torch.export.export(AllOps(), (torch.randn(2, 2, 6, 5), torch.tensor([[0.0, 0, 0, 7, 7]])))
    targets = [str(node.target) for node in exported.graph.nodes if node.op == "call_function"]
    for name in ("spatial_pyramid_pool", "upsample_concat", "roi_spp", "sppf"):
        assert sum(t.startswith(f"spp_zoo.{name}.") for t in targets) >= 1, targets


# --------------------------------------------------------------------------- dispatch
def test_kernel_path_matches_reference_path(device, monkeypatch):
    """The Triton path and the PyTorch path return the same values and the same argmax."""
    x = make_input((2, 3, 11, 9), torch.float32, device, ties=True)
    rois = torch.tensor([[0.0, 0, 0, 8, 7], [1.0, 3, 2, 30, 5]], device=device)
    calls = [
        lambda t: torch.ops.spp_zoo.spatial_pyramid_pool(t, [4, 2, 1], "max"),
        lambda t: torch.ops.spp_zoo.roi_spp(t, rois, [3, 2, 1], 1.0),
        lambda t: (torch.ops.spp_zoo.sppf(t, 5),),
    ]
    kernel_results = [call(x) for call in calls]
    monkeypatch.setattr(runtime, "INTERPRET", False)
    cpu = x.cpu()
    rois = rois.cpu()
    assert not runtime.use_triton(cpu)
    reference_results = [call(cpu) for call in calls]
    for got, want in zip(kernel_results, reference_results, strict=True):
        for a, b in zip(got, want, strict=True):
            assert_same(a, b)


def test_cpu_without_interpreter_runs_reference(monkeypatch):
    monkeypatch.setattr(runtime, "INTERPRET", False)
    assert not runtime.use_triton(torch.empty(1))
    assert_same(kernels.sppf(X), reference.sppf(X, 5))
