"""TorchScript of the functional ops (as torchvision's ops script) and both box forms of roi_spp / RoISPP.

Scripted, every function runs its :mod:`kernels.reference` composite; eager, the ``torch.ops.spp_zoo``
operator (interpreted Triton under ``TRITON_INTERPRET=1``). Both must compute the same values.
"""

import pytest
import torch
from _helpers import assert_same

import kernels

X = torch.randn(2, 3, 9, 7)
ROIS = torch.tensor([[1.0, 0, 0, 6, 6], [0.0, 1, 2, 5, 8], [1.0, 2.5, 1, 4, 3], [0.0, 3, 3, 3, 3]])
BOXES = [ROIS[[1, 3], 1:], ROIS[[0, 2], 1:]]  # the same RoIs per image: image 0 first
ROIS_IN_LIST_ORDER = ROIS[[1, 3, 0, 2]]


@pytest.fixture(scope="module")
def scripted():
    return {
        name: torch.jit.script(getattr(kernels, name))
        for name in ("spatial_pyramid_pool", "upsample_concat", "roi_spp", "sppf")
    }


def test_functional_ops_script_to_the_reference_path(scripted):
    for fn in scripted.values():
        assert "spp_zoo" not in str(fn.graph)  # no custom operator: the reference composite
    assert_same(scripted["spatial_pyramid_pool"](X, [4, 2, 1], "max"), kernels.spatial_pyramid_pool(X, (4, 2, 1)))
    torch.testing.assert_close(
        scripted["spatial_pyramid_pool"](X, [3, 1], "avg"), kernels.spatial_pyramid_pool(X, (3, 1), "avg")
    )
    assert_same(scripted["spatial_pyramid_pool"](X), kernels.spatial_pyramid_pool(X))  # defaults kept
    pooled = [torch.randn(2, 2, 3, 3), torch.randn(2, 1, 1, 2)]
    torch.testing.assert_close(scripted["upsample_concat"](X, pooled, True), kernels.upsample_concat(X, pooled, True))
    assert_same(scripted["roi_spp"](X, ROIS, [3, 1], 0.5), kernels.roi_spp(X, ROIS, (3, 1), 0.5))
    assert_same(scripted["sppf"](X, 3), kernels.sppf(X, 3))
    assert_same(scripted["sppf"](X), kernels.sppf(X))


def test_roi_spp_takes_both_box_forms_eager_and_scripted(scripted):
    expected = kernels.roi_spp(X, ROIS_IN_LIST_ORDER, (2, 1), 0.5)
    assert_same(kernels.roi_spp(X, BOXES, (2, 1), 0.5), expected)
    assert_same(kernels.roi_spp(X, tuple(BOXES), (2, 1), 0.5), expected)
    assert_same(scripted["roi_spp"](X, BOXES, [2, 1], 0.5), expected)
    assert_same(scripted["roi_spp"](X, ROIS_IN_LIST_ORDER, [2, 1], 0.5), expected)
    # an image without boxes, and no boxes at all
    assert_same(scripted["roi_spp"](X, [BOXES[0][:0], BOXES[1]], [2, 1], 0.5), expected[2:])
    assert scripted["roi_spp"](X, [X.new_zeros((0, 4))], [2, 1], 0.5).shape == (0, 3 * 5)
    assert kernels.roi_spp(X, [], (2, 1)).shape == (0, 3 * 5)


def test_roi_spp_boxes_of_another_floating_dtype_eager_and_scripted(scripted):
    expected = kernels.roi_spp(X, ROIS, (3, 1))
    for boxes in (ROIS.double(), ROIS.half(), ROIS.bfloat16()):  # these coordinates are exact in every dtype
        assert_same(kernels.roi_spp(X, boxes, (3, 1)), expected)
        assert_same(scripted["roi_spp"](X, boxes, [3, 1]), expected)
        assert_same(
            kernels.roi_spp(X, [b.to(boxes.dtype) for b in BOXES], (3, 1)),
            kernels.roi_spp(X, ROIS_IN_LIST_ORDER, (3, 1)),
        )


def test_scripted_roi_spp_rejects_bad_box_shapes(scripted):
    with pytest.raises(Exception, match=r"boxes\[1\] must have shape \(L, 4\)"):
        scripted["roi_spp"](X, [BOXES[0], ROIS], [2], 1.0)
    with pytest.raises(Exception, match=r"boxes must be a \(K, 5\) tensor"):
        scripted["roi_spp"](X, ROIS[:, 1:], [2], 1.0)


def test_scripted_roispp_module_takes_both_box_forms_and_round_trips(tmp_path):
    module = kernels.RoISPP((3, 2, 1), spatial_scale=0.5)
    path = tmp_path / "roispp.pt"
    torch.jit.script(module).save(str(path))
    loaded = torch.jit.load(str(path))
    expected = module(X, ROIS_IN_LIST_ORDER)
    assert_same(module(X, BOXES), expected)
    assert_same(loaded(X, BOXES), expected)
    assert_same(loaded(X, ROIS_IN_LIST_ORDER), expected)


def test_scripted_ops_inside_a_scripted_user_module():
    class Head(torch.nn.Module):
        def forward(self, x: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
            pyramid = kernels.sppf(x, 3)
            return kernels.roi_spp(pyramid, boxes, [2, 1], 1.0) + kernels.spatial_pyramid_pool(x, [1]).sum()

    head = Head()
    assert_same(torch.jit.script(head)(X, BOXES), head(X, BOXES))
