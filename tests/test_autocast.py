"""``torch.autocast``: the dtype every op computes in and returns, and every zoo model under CPU bfloat16.

Rules (``kernels.ops.AUTOCAST_RULES``, the same for CPU and CUDA): ``spatial_pyramid_pool``, ``sppf`` and
``roi_spp`` keep their input's dtype (as PyTorch's pooling does under autocast); ``roi_spp``'s boxes are
converted to the features' coordinate dtype; ``upsample_concat`` casts to the widest input dtype
(``torch.cat``'s rule). Inside, every op runs with autocast off. CUDA autocast cannot run here (no
GPU): for it, the registration and the rule are checked, not an execution.
"""

import pytest
import torch
import torchvision
from _helpers import assert_same

import kernels
import zoo
from kernels import ops

X = torch.randn(2, 3, 9, 8, dtype=torch.float64).float()
ROIS = torch.tensor([[0.0, 0, 0, 8, 8], [1.0, 1, 1, 7, 6], [0.0, 2.5, 0, 6, 8]])


def _autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.mark.parametrize("name", sorted(ops.AUTOCAST_RULES))
@pytest.mark.parametrize("dispatch_key", ["AutocastCPU", "AutocastCUDA"])
def test_every_op_has_an_autocast_kernel_on_cpu_and_cuda(name, dispatch_key):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"spp_zoo::{name}", dispatch_key)


def test_rules_cast_only_tensors_of_their_device_type():
    """The CUDA rule (not executable here) leaves CPU tensors alone and casts like the CPU rule."""
    x, p = X, [X[:, :1, :2, :2].double()]
    cpu = ops.AUTOCAST_RULES["upsample_concat"]((x, p, False), "cpu")
    assert cpu[0].dtype == cpu[1][0].dtype == torch.float64
    cuda = ops.AUTOCAST_RULES["upsample_concat"]((x, p, False), "cuda")
    assert cuda[0] is x and cuda[1][0] is p[0]
    features, rois, *_ = ops.AUTOCAST_RULES["roi_spp"]((X.half(), ROIS.double(), [2], 1.0), "cpu")
    assert features.dtype == rois.dtype == torch.float16
    _, rois, *_ = ops.AUTOCAST_RULES["roi_spp"]((X.bfloat16(), ROIS.half(), [2], 1.0), "cpu")
    assert rois.dtype == torch.float32  # bfloat16 features: coordinates in float32
    assert ops.AUTOCAST_RULES["roi_spp"]((X.half(), ROIS.double(), [2], 1.0), "cuda")[1].dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("op", ["spp_max", "spp_avg", "sppf", "roi_spp"])
def test_pooling_ops_keep_their_input_dtype_and_values(op, dtype):
    fn = {
        "spp_max": lambda x: kernels.spatial_pyramid_pool(x, (3, 2, 1)),
        "spp_avg": lambda x: kernels.spatial_pyramid_pool(x, (3, 2, 1), "avg"),
        "sppf": lambda x: kernels.sppf(x, 3),
        "roi_spp": lambda x: kernels.roi_spp(x, ROIS, (3, 1), 0.5),
    }[op]
    x = X.to(dtype)
    expected = fn(x)
    leaf = x.clone().requires_grad_(True)
    with _autocast():
        out = fn(leaf)
        out.float().sum().backward()
    assert out.dtype == dtype and leaf.grad.dtype == dtype
    assert_same(out.detach(), expected)


def test_upsample_concat_promotes_to_the_widest_input_dtype():
    pooled = [torch.randn(2, 2, 3, 3).bfloat16().requires_grad_(True)]
    x = X.clone().requires_grad_(True)
    with pytest.raises(TypeError, match=r"pooled\[0\] has dtype torch.bfloat16 but x has dtype torch.float32"):
        kernels.upsample_concat(x, pooled)  # outside autocast, mixed dtypes are an error
    with _autocast():
        out = kernels.upsample_concat(x, pooled, True)
        assert kernels.upsample_concat(x.bfloat16(), pooled).dtype == torch.bfloat16
    assert out.dtype == torch.float32
    assert_same(out.detach(), kernels.upsample_concat(X, [pooled[0].detach().float()], True))
    out.sum().backward()
    assert pooled[0].grad.dtype == torch.bfloat16 and x.grad.dtype == torch.float32


@pytest.mark.parametrize("features_dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_roi_spp_boxes_of_another_dtype_use_the_features_coordinate_arithmetic(features_dtype):
    features = (torch.randn(2, 3, 40, 40) * 4).to(features_dtype)
    # coordinates that float16 rounds (1000.3 -> 1000.5 at scale 1/32 decides a bin edge)
    boxes = torch.tensor([[0.0, 1000.3, 16.2, 1200.7, 1100.1], [1.0, 3.3, 7.7, 700.2, 999.9]])
    cast_first = boxes.to(kernels.reference.coordinate_dtype(features_dtype))
    expected = kernels.roi_spp(features, cast_first, (3, 2, 1), 1 / 32)
    assert_same(kernels.roi_spp(features, boxes, (3, 2, 1), 1 / 32), expected)
    assert_same(kernels.roi_spp(features, boxes.double(), (3, 2, 1), 1 / 32), expected)
    with _autocast():  # the operator itself under autocast: its rule converts the boxes
        out, _ = torch.ops.spp_zoo.roi_spp(features, boxes.double(), [3, 2, 1], 1 / 32)
    assert_same(out, expected)
    if features_dtype != torch.bfloat16:  # torchvision's CPU kernel, boxes cast to the features' dtype
        tv = [torchvision.ops.roi_pool(features, cast_first, n, 1 / 32).flatten(1) for n in (3, 2, 1)]
        assert_same(expected, torch.cat(tv, 1))


# --------------------------------------------------------------------------------------------- models
MODELS = {
    "sppnet_zf5": (lambda: zoo.sppnet_zf5(num_classes=3, width=0.25, representation_size=16), (2, 3, 33, 29)),
    "sppnet_resnet50": (lambda: zoo.sppnet_resnet50(num_classes=3, representation_size=16), (1, 3, 32, 32)),
    "pspnet_resnet50": (lambda: zoo.pspnet_resnet50(num_classes=3), (1, 3, 9, 11)),
    "pspnet_resnet101": (lambda: zoo.pspnet_resnet101(num_classes=3), (1, 3, 9, 9)),
    "deconvnet_vgg16": (lambda: zoo.deconvnet_vgg16(num_classes=3, width=1 / 16), (1, 3, 224, 224)),
}


def _out(result):
    return result["out"] if isinstance(result, dict) else result


@pytest.mark.parametrize("name", list(MODELS))
def test_models_run_under_cpu_bfloat16_autocast(name):
    """bfloat16 logits; the fused kernels compute what the reference composites compute under autocast."""
    build, shape = MODELS[name]
    model = build().eval()
    x = torch.randn(shape)
    with torch.no_grad(), _autocast():
        fused = _out(model(x))
        if name == "pspnet_resnet101":  # the layers of pspnet_resnet50, deeper (bfloat16 is slow on CPUs)
            assert fused.dtype == torch.bfloat16 and torch.isfinite(fused).all()
            return
        with zoo.kernel_path(model, False):
            plain = _out(model(x))
    assert fused.dtype == plain.dtype == torch.bfloat16
    assert fused.shape == plain.shape and torch.isfinite(fused).all()
    # avg pooling sums in another order: one bfloat16 rounding apart, amplified by the layers after it
    torch.testing.assert_close(fused.float(), plain.float(), rtol=0.05, atol=0.05 * plain.abs().max().item())


def test_sppnet_trains_under_autocast():
    model = zoo.sppnet_zf5(num_classes=3, width=0.25, representation_size=16).train()
    with _autocast():
        loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 33, 29)), torch.tensor([0, 2]))
    loss.backward()
    assert model.features.conv1.weight.grad.dtype == torch.float32
    assert torch.isfinite(model.features.conv1.weight.grad).all()


def test_detector_runs_under_autocast():
    model = zoo.spp_detector_zf5(num_classes=3, trunk_width=0.25, representation_size=16, min_size=64, max_size=96)
    proposals = [torch.tensor([[0.0, 0, 40, 30], [8, 4, 70, 60], [20, 10, 60, 50]])]
    with torch.no_grad(), _autocast():
        (result,) = model.eval()([torch.rand(3, 64, 80)], proposals=proposals)
    assert result["boxes"].dtype == result["scores"].dtype == torch.bfloat16
    assert result["boxes"].shape[1] == 4
