"""``torch.use_deterministic_algorithms(True)``: every op is deterministic, except the Triton backward of
roi_spp (atomic adds), which raises PyTorch's non-determinism error there and only there.

The Triton path is checked where it runs here: interpreted on CPU under ``TRITON_INTERPRET=1`` (the
alert is raised by the op's dispatch, so it fires exactly where a GPU would run the atomic kernel).
"""

import warnings
from contextlib import contextmanager

import pytest
import torch

import kernels
import kernels._runtime as runtime
import zoo

NON_DETERMINISTIC = "does not have a deterministic implementation"


@contextmanager
def deterministic(warn_only: bool = False):
    saved = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])


def _x(*shape):
    return torch.randn(*shape, dtype=torch.float64).float()


ROIS = torch.tensor([[0.0, 0, 0, 8, 8], [0.0, 1, 1, 7, 6], [1.0, 2, 0, 6, 8], [0.0, 0, 2, 5, 5]])


def _deterministic_cases():
    """(name, fn of x) for every op whose forward AND backward are deterministic on every path."""
    pooled_shapes = [(2, 2, 1, 1), (2, 2, 3, 3)]
    pooled = [torch.randn(s) for s in pooled_shapes]
    return [
        ("spp_max", lambda x: kernels.spatial_pyramid_pool(x, (4, 2, 1))),
        ("spp_avg", lambda x: kernels.spatial_pyramid_pool(x, (3, 2), "avg")),
        ("upsample_concat", lambda x: kernels.upsample_concat(x, [p.requires_grad_() for p in pooled])),
        ("sppf", lambda x: kernels.sppf(x, 3)),
        ("roi_spp_forward", lambda x: kernels.roi_spp(x.detach(), ROIS, (3, 1))),
    ]


def _run(fn, x):
    leaf = x.clone().requires_grad_(True)
    out = fn(leaf)
    if out.requires_grad:
        out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
        return out.detach(), leaf.grad
    return out, None


@pytest.mark.parametrize("index", range(5))
def test_deterministic_ops_run_and_repeat_bitwise_without_any_alert(index):
    name, fn = _deterministic_cases()[index]
    x = _x(2, 3, 9, 8)
    with deterministic(warn_only=True), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = _run(fn, x)
        second = _run(fn, x)
    assert not [w for w in caught if NON_DETERMINISTIC in str(w.message)], name
    for a, b in zip(first, second, strict=True):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    with deterministic():  # and nothing raises
        _run(fn, x)


def _roi_backward(x):
    leaf = x.clone().requires_grad_(True)
    kernels.roi_spp(leaf, ROIS, (3, 2, 1)).sum().backward()
    return leaf.grad


def test_roi_spp_triton_backward_raises_the_standard_error(device):
    x = _x(2, 3, 9, 8).to(device)
    expected = _roi_backward(x)
    with deterministic(), pytest.raises(RuntimeError, match=f"roi_spp_backward.*{NON_DETERMINISTIC}"):
        _roi_backward(x)
    with deterministic(warn_only=True), pytest.warns(UserWarning, match=NON_DETERMINISTIC):
        grad = _roi_backward(x)
    torch.testing.assert_close(grad, expected)


def test_roi_spp_reference_backward_is_deterministic(monkeypatch):
    monkeypatch.setattr(runtime, "INTERPRET", False)  # the CPU reference path (torchvision's CPU kernel)
    x = _x(2, 3, 9, 8)
    with deterministic():
        first, second = _roi_backward(x), _roi_backward(x)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------- models
MODELS = {
    "sppnet_zf5": (lambda: zoo.sppnet_zf5(num_classes=3, width=0.25, representation_size=16), (2, 3, 33, 29)),
    "sppnet_resnet50": (lambda: zoo.sppnet_resnet50(num_classes=3, representation_size=16), (2, 3, 40, 36)),
    "pspnet_resnet50": (lambda: zoo.pspnet_resnet50(num_classes=3, aux_loss=True), (2, 3, 9, 11)),
    "pspnet_resnet101": (lambda: zoo.pspnet_resnet101(num_classes=3), (2, 3, 9, 9)),
    "deconvnet_vgg16": (lambda: zoo.deconvnet_vgg16(num_classes=3, width=1 / 16), (2, 3, 224, 224)),
}


def _loss(out):
    if isinstance(out, dict):
        return sum(v.float().square().mean() for v in out.values())
    return out.float().square().mean()


@pytest.mark.parametrize("name", list(MODELS))
def test_models_train_under_deterministic_algorithms(name, monkeypatch):
    """A training step and an inference pass; the ops' PyTorch path on the CPU (the kernels' own
    determinism, interpreted, is checked op by op above)."""
    monkeypatch.setattr(runtime, "INTERPRET", False)
    build, shape = MODELS[name]
    model = build().train()
    with deterministic():
        if name != "pspnet_resnet101":  # the same layers as pspnet_resnet50, deeper: inference only (time)
            _loss(model(torch.randn(shape))).backward()
            assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
        model.eval()
        with torch.no_grad():
            model(torch.randn(shape))


def test_detector_training_raises_on_the_triton_path_only(device, monkeypatch):
    """SPP-net detection: inference is deterministic; its training backward runs roi_spp's atomic kernel
    on the Triton path (as torchvision's Faster R-CNN runs roi_align's on CUDA)."""
    model = zoo.spp_detector_zf5(
        num_classes=3,
        trunk_width=0.25,
        representation_size=16,
        min_size=64,
        max_size=96,
        box_batch_size_per_image=8,
    )
    images = [torch.rand(3, 64, 80)]
    proposals = [torch.tensor([[0.0, 0, 40, 30], [8, 4, 70, 60], [20, 10, 60, 50]])]
    targets = [{"boxes": torch.tensor([[4.0, 6, 40, 50]]), "labels": torch.tensor([1])}]
    with deterministic():
        model.eval()
        with torch.no_grad():
            model(images, proposals=proposals)
        model.train()
        with pytest.raises(RuntimeError, match=f"roi_spp_backward.*{NON_DETERMINISTIC}"):
            sum(model(images, targets, proposals).values()).backward()
        monkeypatch.setattr(runtime, "INTERPRET", False)  # the CPU reference path trains
        sum(model(images, targets, proposals).values()).backward()


def test_deconvnet_unpooling_equals_max_unpool2d_values_and_gradients():
    from zoo.models.deconvnet import _max_unpool

    x = torch.randn(2, 3, 9, 11)
    pooled, switches = torch.nn.functional.max_pool2d_with_indices(x, 2, 2)
    grad = torch.randn(2, 3, 9, 11)
    a = pooled.clone().requires_grad_(True)
    b = pooled.clone().requires_grad_(True)
    ours = _max_unpool(a, switches, [9, 11])
    theirs = torch.nn.functional.max_unpool2d(b, switches, 2, 2, output_size=[9, 11])
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    ours.backward(grad)
    theirs.backward(grad)
    torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)
