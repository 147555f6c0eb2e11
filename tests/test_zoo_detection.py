"""SPP-net detector: shared trunk, RoI-SPP pooling, RPN or given proposals, training, scripting."""

import copy
import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import box_iou, roi_pool

import zoo
from zoo.models import nms as _nms
from zoo.models.detection import RoISPPPooler

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
    expected = torch.cat([roi_pool(features["0"], boxes, n, spatial_scale=1 / 16).flatten(1) for n in (6, 3, 2, 1)], 1)
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


def test_eager_detections_and_losses_equal_torchvisions_rpn_and_roi_heads():
    """SPPRegionProposalNetwork / SPPRoIHeads only swap in zoo._nms: torchvision's own classes give the same."""
    model = _detector(box_score_thresh=0.05).eval()
    stock = copy.deepcopy(model)
    stock.rpn.__class__ = RegionProposalNetwork
    stock.roi_heads.__class__ = RoIHeads
    stock.rpn.box_similarity = stock.roi_heads.box_similarity = box_iou
    proposals = [
        torch.tensor([[10.0, 10.0, 60.0, 80.0], [12.0, 8.0, 58.0, 84.0]]),
        torch.tensor([[5.0, 5.0, 50.0, 50.0]]),
    ]
    with torch.no_grad():
        for args in ((_images(),), (_images(), None, proposals)):
            for ours, theirs in zip(model(*args), stock(*args), strict=True):
                assert ours["boxes"].shape[0] > 0
                for key in ("boxes", "labels", "scores"):
                    assert torch.equal(ours[key], theirs[key])
    losses = []
    for m in (model.train(), stock.train()):
        torch.manual_seed(3)
        losses.append(m(_images(), TARGETS))
    assert losses[0].keys() == losses[1].keys()
    for key in losses[0]:
        assert torch.equal(losses[0][key], losses[1][key])


def test_scripted_detector_file_runs_with_torch_only(tmp_path):
    model = _detector().eval()
    # sizes whose resize factor is exact (x2, x1; x0.5, x4): torchvision's GeneralizedRCNNTransform rounds the
    # resized size differently when scripted (e.g. 100 x 1.28 -> 128 eager, 127 scripted), for any model
    torch.manual_seed(1)
    batches = [[torch.rand(3, 64, 96), torch.rand(3, 128, 160)], [torch.rand(3, 256, 320), torch.rand(3, 32, 40)]]
    proposals = [
        [torch.tensor([[10.0, 10.0, 60.0, 50.0]]), torch.tensor([[5.0, 5.0, 50.0, 50.0], [0.0, 0.0, 120.0, 90.0]])],
        [torch.tensor([[20.0, 30.0, 200.0, 240.0]]), torch.tensor([[2.0, 3.0, 30.0, 25.0]])],
    ]
    zoo.export.torchscript(model, tmp_path / "detector.pt")
    with torch.no_grad():
        expected = [model(images) for images in batches]
        expected += [model(images, proposals=given) for images, given in zip(batches, proposals, strict=True)]
    torch.save((batches, proposals), tmp_path / "inputs.pt")
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("zoo", "kernels", "torchvision"):
            sys.modules[name] = None  # import fails: the file must not need them
        import torch
        model = torch.jit.load(r"{tmp_path}/detector.pt")
        batches, proposals = torch.load(r"{tmp_path}/inputs.pt")
        with torch.no_grad():
            outputs = [model(images)[1] for images in batches]
            outputs += [model(images, None, given)[1] for images, given in zip(batches, proposals)]
        assert not [name for name in sys.modules if name.startswith(("torchvision.", "zoo.", "kernels."))]
        torch.save(outputs, r"{tmp_path}/outputs.pt")
        """
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", script], check=True, timeout=300)
    outputs = torch.load(tmp_path / "outputs.pt")
    assert len(outputs) == len(expected) == 4
    for got, want in zip(outputs, expected, strict=True):
        for a, b in zip(got, want, strict=True):
            assert b["boxes"].shape[0] > 0 and a["labels"].shape == b["labels"].shape
            assert torch.equal(a["labels"], b["labels"])
            for key in ("boxes", "scores"):
                torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-4)


# zoo._nms: pure-PyTorch NMS and box helpers, exactly torchvision's results


def _random_boxes(n, generator, dtype=torch.float32, integer=False, scale=100.0):
    corner = torch.rand(n, 2, generator=generator) * scale
    size = torch.rand(n, 2, generator=generator) * scale / 3
    boxes = torch.cat([corner, corner + size], 1)
    return (boxes.round() if integer else boxes).to(dtype)


NMS_THRESHOLDS = (0.0, 0.1, 0.3, 1 / 3, 0.5, 0.7, 1.0)


@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "scripted"])
def test_nms_and_batched_nms_equal_torchvision(scripted):
    nms = torch.jit.script(_nms.nms) if scripted else _nms.nms
    batched_nms = torch.jit.script(_nms.batched_nms) if scripted else _nms.batched_nms
    generator = torch.Generator().manual_seed(0)
    for trial in range(40):
        n = [0, 1, 2, 7, 30, 80][trial % 6]
        dtype = torch.float64 if trial % 5 == 4 else torch.float32
        boxes = _random_boxes(n, generator, dtype, integer=trial % 3 == 0)  # integer corners: exact IoU ties
        if trial % 2:  # many tied scores
            scores = torch.randint(0, 3, (n,), generator=generator).to(dtype)
        else:
            scores = torch.rand(n, generator=generator, dtype=dtype)
        if n >= 7:
            boxes[3] = boxes[4] = boxes[1]  # identical boxes, with and without identical scores
            scores[4] = scores[1]
        idxs = torch.randint(0, 4, (n,), generator=generator)
        for threshold in NMS_THRESHOLDS:
            expected = torchvision.ops.nms(boxes, scores, threshold)
            assert torch.equal(nms(boxes, scores, threshold), expected), (trial, threshold)
            expected = torchvision.ops.batched_nms(boxes, scores, idxs, threshold)
            assert torch.equal(batched_nms(boxes, scores, idxs, threshold), expected), (trial, threshold)


@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "scripted"])
def test_batched_nms_on_more_than_4000_coordinates_uses_torchvisions_per_class_variant(scripted):
    batched_nms = torch.jit.script(_nms.batched_nms) if scripted else _nms.batched_nms
    generator = torch.Generator().manual_seed(1)
    for n, classes in ((1001, 3), (2500, 20)):  # boxes.numel() > 4000: torchvision loops over the classes
        boxes = _random_boxes(n, generator)
        scores = torch.randint(0, 50, (n,), generator=generator).float() / 50  # ties across classes too
        idxs = torch.randint(0, classes, (n,), generator=generator)
        for threshold in (0.3, 0.7):
            expected = torchvision.ops.batched_nms(boxes, scores, idxs, threshold)
            assert torch.equal(batched_nms(boxes, scores, idxs, threshold), expected)
    boxes = _random_boxes(2000, generator)
    scores = torch.rand(2000, generator=generator)
    assert torch.equal(_nms.nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))


def test_nms_threshold_is_strict_and_compared_in_double_like_torchvision():
    # IoU exactly 0.5: not suppressed at 0.5 (strict >)
    boxes = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    scores = torch.tensor([0.9, 0.8])
    for threshold in (0.5, 0.4999, 0.5001):
        assert torch.equal(_nms.nms(boxes, scores, threshold), torchvision.ops.nms(boxes, scores, threshold))
    assert _nms.nms(boxes, scores, 0.5).tolist() == [0, 1]
    # thresholds at and just around a float32 IoU value, below float32 resolution: the CPU kernel compares
    # the float IoU with the double threshold
    generator = torch.Generator().manual_seed(2)
    for _ in range(20):
        pair = _random_boxes(2, generator)
        pair[1, :2] = pair[0, :2] + 1  # overlapping
        iou = torchvision.ops.box_iou(pair[:1], pair[1:])[0, 0].item()
        for threshold in (iou, iou - 1e-12, iou + 1e-12, torch.tensor(iou).nextafter(torch.tensor(0.0)).item()):
            got = _nms.nms(pair, torch.tensor([0.9, 0.1]), threshold)
            assert torch.equal(got, torchvision.ops.nms(pair, torch.tensor([0.9, 0.1]), threshold)), threshold


def test_nms_empty_and_bad_inputs():
    empty = torch.zeros(0, 4)
    assert _nms.nms(empty, torch.zeros(0), 0.5).dtype == torch.int64
    assert _nms.nms(empty, torch.zeros(0), 0.5).shape == (0,)
    assert _nms.batched_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        _nms.nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="scores"):
        _nms.nms(torch.zeros(3, 4), torch.zeros(2), 0.5)


def test_box_helpers_equal_torchvision():
    generator = torch.Generator().manual_seed(3)
    boxes = _random_boxes(50, generator, scale=140.0) - 20
    boxes[:5, 2:] = boxes[:5, :2] + 0.005  # tiny boxes
    other = _random_boxes(30, generator)
    ops = torchvision.ops
    for fn in (_nms, torch.jit.script(_nms.box_iou)):
        iou = fn.box_iou(boxes, other) if fn is _nms else fn(boxes, other)
        assert torch.equal(iou, ops.box_iou(boxes, other))
    assert torch.equal(_nms.box_area(boxes), ops.box_area(boxes))
    for size in ((100, 120), (64, 64)):
        assert torch.equal(_nms.clip_boxes_to_image(boxes, size), ops.clip_boxes_to_image(boxes, size))
        batched = boxes.reshape(5, 10, 4)
        assert torch.equal(_nms.clip_boxes_to_image(batched, size), ops.clip_boxes_to_image(batched, size))
    for min_size in (1e-2, 1.0, 10.0):
        assert torch.equal(_nms.remove_small_boxes(boxes, min_size), ops.remove_small_boxes(boxes, min_size))
