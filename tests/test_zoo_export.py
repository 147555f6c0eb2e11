"""Deployment round trips: TorchScript files run with plain torch, torch.export with dynamic H/W, ONNX."""

import subprocess
import sys
import textwrap

import pytest
import torch

import zoo
from zoo import export

_BUILDS = {
    "pspnet_resnet50": (lambda: zoo.pspnet_resnet50(num_classes=3, aux_loss=True), [(41, 49), (30, 37)]),
    "pspnet_resnet101": (lambda: zoo.pspnet_resnet101(num_classes=2), [(33, 33), (25, 40)]),
    "sppnet_zf5": (lambda: zoo.sppnet_zf5(num_classes=5, width=0.25, representation_size=32), [(64, 64), (97, 45)]),
    "sppnet_resnet50": (lambda: zoo.sppnet_resnet50(num_classes=4, representation_size=16), [(64, 64), (47, 81)]),
    "deconvnet_vgg16": (lambda: zoo.deconvnet_vgg16(num_classes=3, width=1 / 16), [(224, 224), (250, 231)]),
}


# torch 2.11 (the floor version) cannot reduce ((H/2)//4)-style size expressions (sympy PolynomialError in
# symbolic_shapes) and guards the parity of H/W instead: the exported program then rejects some sizes.
_EXPORT_GUARDS_PARITY = pytest.mark.xfail(
    torch.__version__.startswith("2.11."),
    strict=True,
    reason="torch 2.11's torch.export guards the parity of H/W for stride-2 trunks (later versions do not)",
)


def _model(name):
    torch.manual_seed(0)
    build, sizes = _BUILDS[name]
    return build(), sizes


def _out(result):
    return result["out"] if isinstance(result, dict) else result


def assert_close_rel(actual, expected, rel=1e-5):
    assert actual.shape == expected.shape
    err = (actual - expected).abs().max().item()
    assert err <= rel * expected.abs().max().item() + 1e-6, err


def test_torchscript_files_run_in_a_process_with_only_torch(tmp_path):
    """Saved with zoo.export.torchscript; loaded where zoo, kernels and torchvision cannot be imported."""
    expected = {}
    for name in _BUILDS:
        model, sizes = _model(name)
        model.eval()
        export.torchscript(model, tmp_path / f"{name}.pt")
        inputs = [torch.randn(2, 3, *size) for size in sizes]
        with torch.no_grad():
            expected[name] = [_out(model(x)) for x in inputs]
        torch.save(inputs, tmp_path / f"{name}.inputs.pt")
    script = textwrap.dedent(
        f"""
        import sys
        for blocked in ("zoo", "kernels", "torchvision"):
            sys.modules[blocked] = None  # importing them now raises ImportError
        import torch
        outputs = {{}}
        for name in {sorted(expected)!r}:
            model = torch.jit.load(r"{tmp_path}/" + name + ".pt")
            inputs = torch.load(r"{tmp_path}/" + name + ".inputs.pt")
            with torch.no_grad():
                results = [model(x) for x in inputs]
            outputs[name] = [r["out"] if isinstance(r, dict) else r for r in results]
        torch.save(outputs, r"{tmp_path}/outputs.pt")
        """
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", script], check=True, timeout=300)
    outputs = torch.load(tmp_path / "outputs.pt")
    for name, tensors in expected.items():
        assert len(outputs[name]) == 2
        for actual, reference in zip(outputs[name], tensors, strict=True):
            assert_close_rel(actual, reference)


def test_scripted_pspnet_keeps_train_mode_aux_output_and_errors():
    torch.manual_seed(0)
    model = zoo.pspnet_resnet50(num_classes=2, aux_loss=True)
    scripted = export.torchscript(model)
    assert set(scripted.train()(torch.randn(2, 3, 33, 33))) == {"out", "aux"}
    with pytest.raises(torch.jit.Error, match="3 channels"):
        scripted.eval()(torch.randn(1, 4, 33, 33))


@pytest.mark.parametrize(
    "name",
    [
        "pspnet_resnet50",
        *(pytest.param(n, marks=_EXPORT_GUARDS_PARITY) for n in ("sppnet_zf5", "sppnet_resnet50", "deconvnet_vgg16")),
    ],
)
def test_torch_export_dynamic_height_width(name):
    model, sizes = _model(name)
    model.eval()
    example, other = (torch.randn(2, 3, *size) for size in sizes)
    program = export.export_program(model, example, dynamic_hw=True)
    targets = {str(node.target) for node in program.graph.nodes}
    assert any("spp_zoo" in t for t in targets) == (name != "deconvnet_vgg16")
    with torch.no_grad():
        for x in (example, other, torch.randn(2, 3, sizes[1][1] + 16, sizes[0][0] + 9)):
            assert_close_rel(_out(program.module()(x)), _out(model(x)))


@_EXPORT_GUARDS_PARITY
def test_torch_export_reference_path_has_no_custom_ops_and_keeps_the_minimum_size():
    model = zoo.sppnet_zf5(num_classes=3, width=0.25, representation_size=8).eval()
    program = export.export_program(model, torch.randn(1, 3, 64, 64), use_kernels=False)
    assert not any("spp_zoo" in str(node.target) for node in program.graph.nodes)
    assert model.use_kernels is True  # restored
    x = torch.randn(1, 3, 23, 150)  # the smallest input: conv5 1 pixel high
    with torch.no_grad():
        assert_close_rel(program.module()(x), model(x))
    with pytest.raises(Exception, match="23"):
        program.module()(torch.randn(1, 3, 22, 64))


def test_onnx_pspnet_matches_eager_at_a_size_the_pyramid_does_not_divide(tmp_path):
    import onnxruntime as ort  # a dev dependency: a missing install fails here rather than skipping

    torch.manual_seed(0)
    model = zoo.pspnet_resnet50(num_classes=3).eval()
    x = torch.randn(1, 3, 50, 37)  # 7x5 feature map: bins 3 and 6 overlap
    export.to_onnx(model, tmp_path / "pspnet.onnx", x)
    session = ort.InferenceSession(str(tmp_path / "pspnet.onnx"), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        expected = model(x)["out"]
    assert_close_rel(torch.from_numpy(actual), expected)


def test_export_arguments_are_checked():
    with pytest.raises(TypeError, match="nn.Module"):
        export.torchscript(lambda x: x)
    with pytest.raises(ValueError, match="4-D"):
        export.export_program(zoo.sppnet_zf5(width=0.125, representation_size=8), torch.randn(3, 64, 64))


def test_onnx_export_of_max_pyramid_pooling_matches_eager(tmp_path):
    """ONNX has no adaptive max pooling: SPP-net's max pyramid is decomposed into per-bin reductions."""
    import onnxruntime as ort
    import torch.nn.functional as F

    from zoo.export import _adaptive_max_pool2d_by_bins

    for shape, size in [((2, 3, 7, 13), (6, 6)), ((1, 2, 1, 5), (3, 2)), ((1, 1, 4, 4), (1, 1))]:
        x = torch.randint(0, 3, shape).float()  # many ties: the first index wins, as in PyTorch
        values, indices = _adaptive_max_pool2d_by_bins(x, size)
        expected_values, expected_indices = F.adaptive_max_pool2d(x, size, return_indices=True)
        assert torch.equal(values, expected_values) and torch.equal(indices, expected_indices)
    torch.manual_seed(0)
    model = zoo.sppnet_zf5(num_classes=3, width=0.125, representation_size=16).eval()
    x = torch.rand(1, 3, 61, 75)
    zoo.export.to_onnx(model, tmp_path / "sppnet.onnx", x)
    (y,) = ort.InferenceSession(str(tmp_path / "sppnet.onnx")).run(None, {"images": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(y), model(x), rtol=1e-5, atol=1e-6)
