"""SPP-net detector: shared trunk, RoI-SPP pooling, RPN or given proposals, training, scripting."""

import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision
from torchvision.ops import roi_pool

import zoo
from zoo.detection import RoISPPPooler

SMALL = {
    "num_classes": 3, "representation_size": 32, "min_size": 128, "max_size": 200,
    "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 30, "rpn_pre_nms_top_n_train": 100,
    "rpn_post_nms_top_n_train": 30, "box_batch_size_per_image": 32, "box_score_thresh": 0.0,
}  # fmt: skip


def _detector(**extra):
    torch.manual_seed(0)
    return zoo.spp_detector_zf5(trunk_width=0.25, **{**SMALL, **extra})


def _images():
    torch.manual_seed(1)
    return [torch.rand(3, 100, 140), torch.rand(3, 120, 90)]


TARGETS = [
    {"boxes": torch.tensor([[10.0, 20.0, 70.0, 90.0]]), "labels": torch.tensor([1])},
    {"boxes": torch.tensor([[5.0, 5.0, 60.0, 50.0], [30.0, 40.0, 85.0, 110.0]]), "labels": torch.tensor([2, 1])},
]


def test_default_detector_is_the_papers_head():
    model = zoo.spp_detector_zf5()
    pooler = model.roi_heads.box_roi_pool
    assert isinstance(pooler, RoISPPPooler) and pooler.levels == [6, 3, 2, 1] and pooler.spatial_scale == 1 / 16
    assert model.roi_heads.box_head.fc6.in_features == 12800 and model.roi_heads.box_head.fc7.out_features == 4096
    assert model.roi_heads.box_predictor.cls_score.out_features == 21  # 20 VOC classes + background
    assert model.roi_heads.box_predictor.bbox_pred.out_features == 21 * 4
    assert model.transform.min_size == (688,)


def test_rpn_end_to_end_inference_on_images_of_different_sizes():
    model = _detector().eval()
    images = _images()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2
    for det, image in zip(detections, images, strict=True):
        assert set(det) == {"boxes", "labels", "scores"}
        assert det["boxes"].shape[0] > 0 and det["boxes"].shape == (det["labels"].shape[0], 4)
        h, w = image.shape[-2:]
        assert (det["boxes"][:, 2] <= w).all() and (det["boxes"][:, 3] <= h).all()
        assert ((det["labels"] >= 1) & (det["labels"] < 3)).all()


def test_trunk_runs_once_per_batch_whatever_the_number_of_regions():
    model = _detector().eval()
    calls = []
    model.backbone.register_forward_hook(lambda module, inputs, output: calls.append(output.shape))
    first = torch.tensor([[0.0, 0.0, 20.0, 30.0]]).repeat(200, 1) + torch.arange(200.0)[:, None] / 4
    second = 50 * torch.rand(50, 4)
    second[:, 2:] += second[:, :2] + 10
    many = [first, second]
    with torch.no_grad():
        model(_images(), proposals=many)
    assert len(calls) == 1 and calls[0][0] == 2


@pytest.mark.triton_path
def test_given_proposals_are_pooled_with_roi_spp_from_the_shared_map():
    model = _detector().eval()
    images = _images()
    proposals = [
        torch.tensor([[10.0, 10.0, 60.0, 80.0], [0.0, 0.0, 139.0, 99.0]]),
        torch.tensor([[5.0, 5.0, 50.0, 50.0]]),
    ]
    pooled = {}
    pooler = model.roi_heads.box_roi_pool
    pooler.register_forward_hook(lambda module, inputs, output: pooled.update(inputs=inputs, out=output))
    with torch.no_grad():
        detections = model(images, proposals=proposals)
    assert len(detections) == 2
    features, boxes, _ = pooled["inputs"]
    # proposals were scaled from image pixels to the resized images, as the paper's boxes map to conv5
    batch, _ = model.transform(images)
    for given, used, size, image in zip(proposals, boxes, batch.image_sizes, images, strict=True):
        scale = torch.tensor([size[1] / image.shape[2], size[0] / image.shape[1]] * 2)
        torch.testing.assert_close(used, given * scale)
    expected = torch.cat(
        [roi_pool(features["0"], boxes, n, spatial_scale=1 / 16).flatten(1) for n in (6, 3, 2, 1)], 1
    )
    assert pooled["out"].shape == (3, 64 * 50)
    torch.testing.assert_close(pooled["out"], expected, rtol=0, atol=0)


def test_training_losses_and_backward_with_rpn_and_with_given_proposals():
    model = _detector().train()
    losses = model(_images(), TARGETS)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    sum(losses.values()).backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.roi_heads.box_head.fc6.weight.grad.abs().sum() > 0
    model.zero_grad()
    proposals = [torch.tensor([[12.0, 18.0, 72.0, 88.0]]), torch.tensor([[0.0, 0.0, 60.0, 60.0]])]
    losses = model(_images(), TARGETS, proposals=proposals)
    assert set(losses) == {"loss_classifier", "loss_box_reg"}  # no RPN: the caller proposed
    sum(losses.values()).backward()
    assert model.rpn.head.conv[0][0].weight.grad is None


def test_detector_bad_inputs():
    model = _detector()
    with pytest.raises(ValueError, match="targets"):
        model.train()(_images())
    model.eval()
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        model([torch.rand(1, 64, 64)])
    with pytest.raises(ValueError, match="one \\(L, 4\\) tensor per image"):
        model(_images(), proposals=[torch.rand(2, 4)])
    with pytest.raises(ValueError, match=r"proposals\[0\] must have shape \(L, 4\)"):
        model(_images(), proposals=[torch.rand(2, 5), torch.rand(1, 4)])


@pytest.mark.triton_path
def test_kernel_path_equals_reference_path():
    model = _detector().eval()
    with torch.no_grad():
        fused = model(_images())
        with zoo.kernel_path(model, False):
            plain = model(_images())
    for a, b in zip(fused, plain, strict=True):
        for key in a:
            torch.testing.assert_close(a[key], b[key])


def test_resnet50_detector_runs():
    torch.manual_seed(0)
    model = zoo.spp_detector_resnet50(**SMALL).eval()
    assert model.backbone.body.layer4[0].conv2.stride == (1, 1)  # stride 16 trunk
    with torch.no_grad():
        detections = model(_images())
    assert len(detections) == 2 and detections[0]["boxes"].shape[1] == 4


def test_scripted_detector_file_runs_with_torch_and_torchvision_only(tmp_path):
    model = _detector().eval()
    # sizes whose resize factor is exact: torchvision's GeneralizedRCNNTransform rounds the resized
    # size differently when scripted (e.g. 100 x 1.28 -> 128 eager, 127 scripted), for any model
    torch.manual_seed(1)
    images = [torch.rand(3, 64, 96), torch.rand(3, 128, 160)]
    proposals = [torch.tensor([[10.0, 10.0, 60.0, 50.0]]), torch.tensor([[5.0, 5.0, 50.0, 50.0]])]
    zoo.export.torchscript(model, tmp_path / "detector.pt")
    with torch.no_grad():
        expected = [model(images), model(images, proposals=proposals)]
    torch.save((images, proposals), tmp_path / "inputs.pt")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["zoo"] = None
        sys.modules["kernels"] = None
        import torch, torchvision  # torchvision registers roi_pool and nms
        model = torch.jit.load(r"{tmp_path}/detector.pt")
        images, proposals = torch.load(r"{tmp_path}/inputs.pt")
        with torch.no_grad():
            outputs = [model(images)[1], model(images, None, proposals)[1]]
        torch.save(outputs, r"{tmp_path}/outputs.pt")
        """
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", script], check=True, timeout=300)
    outputs = torch.load(tmp_path / "outputs.pt")
    for got, want in zip(outputs, expected, strict=True):
        for a, b in zip(got, want, strict=True):
            for key in ("boxes", "labels", "scores"):
                torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-4)
    assert torchvision.__version__  # the loading process needed torchvision; this one has it too
