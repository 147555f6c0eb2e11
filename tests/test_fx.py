"""torch.fx and torchvision's feature extraction on the kernels and every zoo model.

Each fused op is ONE ``call_function`` node (``torch.fx.wrap``, as torchvision wraps its ops), traced
graphs compute what the eager model computes, and the models' input checks still raise in the
traced module. Under ``TRITON_INTERPRET=1`` the kernels run interpreted (small widths and inputs).
"""

import pytest
import torch
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

import kernels
import zoo
from kernels import functional
from zoo.models._common import check_image_batch

X = torch.randn(2, 3, 9, 7)
ROIS = torch.tensor([[1.0, 0, 0, 6, 6], [0.0, 1, 2, 5, 8], [1.0, 2, 1, 4, 3]])
BOXES = [ROIS[1:2, 1:], ROIS[[0, 2], 1:]]  # the same RoIs as a list of (L, 4) tensors, one per image


def _kernel_modules():
    return [
        (kernels.SpatialPyramidPool((4, 2, 1)), (X,), functional.spatial_pyramid_pool),
        (kernels.SpatialPyramidPool((3, 1), mode="avg"), (X,), functional.spatial_pyramid_pool),
        (
            kernels.UpsampleConcat(True),
            (X, [torch.randn(2, 2, 3, 3), torch.randn(2, 1, 1, 2)]),
            functional.upsample_concat,
        ),
        (kernels.RoISPP((3, 1), 0.5), (X, ROIS), functional.roi_spp),
        (kernels.RoISPP((3, 1), 0.5), (X, BOXES), functional.roi_spp),
        (kernels.SPPF(3), (X,), functional.sppf),
    ]


def _call_nodes(graph: torch.fx.Graph) -> list:
    return [n for n in graph.nodes if n.op not in ("placeholder", "output")]


@pytest.mark.parametrize("index", range(6))
def test_kernel_module_traces_to_one_leaf_call(index):
    module, inputs, fn = _kernel_modules()[index]
    traced = torch.fx.symbolic_trace(module)
    calls = _call_nodes(traced.graph)
    assert [(n.op, n.target) for n in calls] == [("call_function", fn)]
    torch.testing.assert_close(traced(*inputs), module(*inputs), rtol=0, atol=0)


class _Wrapper(nn.Module):
    """A module calling a kernel module (torchvision's leaf-node test uses the same shape of check)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, a, b):
        return self.layer(a, b)


def test_kernel_module_is_a_leaf_node_for_feature_extraction():
    train, evaluation = get_graph_node_names(_Wrapper(kernels.RoISPP((2,))))
    assert train == evaluation == ["a", "b", "layer.roi_spp"]


def test_functional_op_called_through_the_package_is_one_node():
    class UsesPackageName(nn.Module):
        def forward(self, x):
            return kernels.sppf(x, 3) + kernels.spatial_pyramid_pool(x, (2, 1)).sum()

    module = UsesPackageName()
    traced = torch.fx.symbolic_trace(module)
    targets = [n.target for n in _call_nodes(traced.graph) if n.op == "call_function"]
    assert functional.sppf in targets and functional.spatial_pyramid_pool in targets
    torch.testing.assert_close(traced(X), module(X), rtol=0, atol=0)


# --------------------------------------------------------------------------------------------- models
# name: (builder, input size, node -> module whose output the node is, fused ops in the graph)
MODELS = {
    "sppnet_zf5": (
        lambda: zoo.sppnet_zf5(num_classes=3, width=0.25, representation_size=16),
        (33, 29),
        {"features.relu5": "features.relu5", "spp.spatial_pyramid_pool": "spp", "classifier": "classifier"},
        [functional.spatial_pyramid_pool],
    ),
    "sppnet_resnet50": (
        lambda: zoo.sppnet_resnet50(num_classes=3, representation_size=16),
        (40, 36),
        {"features.layer4": "features.layer4", "spp.spatial_pyramid_pool": "spp", "classifier": "classifier"},
        [functional.spatial_pyramid_pool],
    ),
    "pspnet_resnet50": (
        lambda: zoo.pspnet_resnet50(num_classes=3, aux_loss=True),
        (9, 11),
        {
            "ppm.pool.spatial_pyramid_pool": "ppm.pool",
            "ppm.concat.upsample_concat": "ppm.concat",
            "classifier.2": "classifier.2",
        },
        [functional.spatial_pyramid_pool, functional.upsample_concat],
    ),
    "pspnet_resnet101": (
        lambda: zoo.pspnet_resnet101(num_classes=3),
        (9, 9),
        {"ppm.pool.spatial_pyramid_pool": "ppm.pool", "ppm.concat.upsample_concat": "ppm.concat"},
        [functional.spatial_pyramid_pool, functional.upsample_concat],
    ),
    "deconvnet_vgg16": (
        lambda: zoo.deconvnet_vgg16(num_classes=3, width=1 / 16),
        (224, 224),
        {"encoder.4.2": "encoder.4.2", "fc7": "fc7", "classifier": "classifier"},
        [],
    ),
}


def _eager_outputs(model: nn.Module, x: torch.Tensor, module_names: list[str]) -> dict:
    seen, handles = {}, []
    for name in module_names:
        hook = lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().clone())
        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            final = model(x)
    finally:
        for h in handles:
            h.remove()
    return final, seen


@pytest.mark.parametrize("name", list(MODELS))
def test_model_traces_and_extracts_the_eager_features(name):
    build, size, nodes, fused = MODELS[name]
    model = build().eval()
    x = torch.randn(1, 3, *size)
    expected_out, expected = _eager_outputs(model, x, list(nodes.values()))

    traced = torch.fx.symbolic_trace(model)
    targets = [n.target for n in traced.graph.nodes if n.op == "call_function"]
    for fn in fused:  # each fused op is one leaf call, once
        assert targets.count(fn) == 1, fn
    assert targets.count(check_image_batch) == 1
    with torch.no_grad():
        traced_out = traced(x)
    torch.testing.assert_close(traced_out, expected_out, rtol=0, atol=0)

    extractor = create_feature_extractor(model, return_nodes={node: node for node in nodes})
    with torch.no_grad():
        features = extractor(x)
    for node, module_name in nodes.items():
        torch.testing.assert_close(features[node], expected[module_name], rtol=0, atol=0, msg=node)

    # the input check is part of the traced graph: same clear error as the eager model
    with pytest.raises(ValueError, match="input must have 3 channels"):
        traced(torch.randn(1, 4, *size))
    with pytest.raises(ValueError, match="input must have 3 channels"):
        model(torch.randn(1, 4, *size))


def test_detector_trunk_pooler_and_box_head_trace_but_not_the_whole_detector():
    """As with torchvision's Faster R-CNN: the trunk (features), the RoI pooler and the box head trace;
    the whole detector does not (its transform and post-processing iterate over images and boxes)."""
    model = zoo.spp_detector_zf5(
        num_classes=3, trunk_width=0.25, representation_size=16, min_size=64, max_size=96
    ).eval()
    image = torch.randn(1, 3, 64, 80)
    trunk = create_feature_extractor(model.backbone, return_nodes={"relu3": "conv3", "relu5": "conv5"})
    with torch.no_grad():
        feats = trunk(image)
        torch.testing.assert_close(feats["conv5"], model.backbone(image), rtol=0, atol=0)

        pooler = model.roi_heads.box_roi_pool
        traced_pooler = torch.fx.symbolic_trace(pooler)
        assert [n.target for n in traced_pooler.graph.nodes if n.op == "call_function"].count(functional.roi_spp) == 1
        proposals = [torch.tensor([[0.0, 0, 40, 30], [8, 4, 70, 60]])]
        pooled = traced_pooler({"0": feats["conv5"]}, proposals, [(64, 80)])
        torch.testing.assert_close(pooled, pooler({"0": feats["conv5"]}, proposals, [(64, 80)]), rtol=0, atol=0)

        head = torch.fx.symbolic_trace(model.roi_heads.box_head)
        torch.testing.assert_close(head(pooled), model.roi_heads.box_head(pooled), rtol=0, atol=0)
    with pytest.raises((torch.fx.proxy.TraceError, RuntimeError, TypeError)):
        torch.fx.symbolic_trace(model)
