"""zoo.engine.protocol: mmcv's keep-ratio sizes, mmsegmentation's sliding windows against a direct reference,
semseg's protocol against a direct reference, TTA, and IoU from a hand-computed confusion matrix (nanmean vs mean)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo.engine import protocol as P


def _tiny_model(num_classes: int = 4, seed: int = 0) -> nn.Module:
    """A small translation-dependent segmenter: its logits at a pixel depend on the neighbourhood, so windows differ
    from the whole image away from the centre (a 5x5 receptive field with zero padding)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, num_classes, 3, padding=1)).eval()


class _HalfResolution(nn.Module):
    """Returns logits at half the input size in a dict, as some segmenters do: the protocol resizes them."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return {"out": self.inner(F.avg_pool2d(x, 2, ceil_mode=True))}


# ------------------------------------------------------------------------------------------ sizes
@pytest.mark.parametrize(
    "height, width, scale, expected",
    [
        (375, 500, (2048, 512), (512, 683)),  # VOC: the short side bound wins
        (333, 501, (2048, 512), (512, 770)),
        (512, 512, (2048, 512), (512, 512)),
        (1024, 2048, (2048, 1024), (1024, 2048)),  # Cityscapes 512x1024 configs
        (1024, 2048, (2049, 1025), (1025, 2049)),  # Cityscapes 769x769 configs
        (100, 1000, (2048, 512), (205, 2048)),  # the long side bound wins: s = 2.048
        (7, 3, (2048, 512), (1195, 512)),  # portrait: s = 512 / 3, 7 s = 1194.67 + 0.5
        (1, 999, (2048, 512), (2, 2048)),
        (375, 500, (512, 2048), (512, 683)),  # order of the scale does not matter
    ],
)
def test_keep_ratio_size_is_mmcvs(height, width, scale, expected):
    assert P.keep_ratio_size(height, width, scale) == expected


def test_semseg_size_rounds_the_short_side():
    assert P.semseg_size(375, 500, 512) == (384, 512)
    assert P.semseg_size(333, 501, 512) == (340, 512)
    assert P.semseg_size(1024, 2048, 2048) == (1024, 2048)
    assert P.semseg_size(500, 375, 256) == (256, 192)
    assert P.semseg_size(5, 2, 5) == (5, 2)  # round(2.0)
    assert P.semseg_size(4, 10, 5) == (2, 5)  # Python's round(2.5) == 2 (banker's rounding, as semseg)


# -------------------------------------------------------------------------------------- sliding windows
def _mmseg_slide_reference(model, images, crop, stride):
    """mmsegmentation's EncoderDecoder.slide_inference, written out: one window at a time, padded logits summed."""
    h_crop, w_crop = crop
    h_stride, w_stride = stride
    n, _, h_img, w_img = images.shape
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    preds, count = None, torch.zeros((n, 1, h_img, w_img))
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * h_stride, w_idx * w_stride
            y2, x2 = min(y1 + h_crop, h_img), min(x1 + w_crop, w_img)
            y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
            logits = model(images[:, :, y1:y2, x1:x2])
            preds = torch.zeros((n, logits.shape[1], h_img, w_img)) if preds is None else preds
            preds += F.pad(logits, (x1, w_img - x2, y1, h_img - y2))
            count[:, :, y1:y2, x1:x2] += 1
    assert (count == 0).sum() == 0
    return preds / count


@pytest.mark.parametrize(
    "size, crop, stride",
    [((37, 50), (16, 20), (10, 12)), ((64, 64), (33, 33), (22, 22)), ((20, 70), (32, 24), (16, 16)),
     ((19, 23), (19, 23), (5, 5)), ((31, 17), (8, 8), (8, 8))],
)  # fmt: skip
@pytest.mark.parametrize("batch_size", [1, 5])
def test_slide_inference_equals_the_direct_reference(size, crop, stride, batch_size):
    model = _tiny_model()
    images = torch.randn(2, 3, *size)
    with torch.no_grad():
        ours = P.slide_inference(model, images, crop=crop, stride=stride, batch_size=batch_size)
        reference = _mmseg_slide_reference(model, images, crop, stride)
        whole = model(images)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    assert ours.shape == whole.shape
    if len(P.slide_windows(*size, crop, stride)) > 1:
        assert not torch.allclose(ours, whole, atol=1e-3)  # the windows' borders do change the logits


def test_slide_windows_are_clamped_to_the_image():
    windows = P.slide_windows(37, 50, (16, 20), (10, 12))
    assert len(windows) == 4 * 4  # (37 - 16 + 9) // 10 + 1, (50 - 20 + 11) // 12 + 1
    assert windows[-1] == (21, 37, 30, 50) and windows[0] == (0, 16, 0, 20)
    assert all(y2 - y1 == 16 and x2 - x1 == 20 for y1, y2, x1, x2 in windows)
    assert P.slide_windows(10, 12, (16, 20), (10, 12)) == [(0, 10, 0, 12)]  # crop larger: one window, no padding


@pytest.mark.parametrize("crop", [(40, 60), (64, 64), (100, 61)])
def test_slide_equals_whole_when_the_crop_covers_the_image(crop):
    model = _tiny_model()
    images = torch.randn(3, 3, 40, 60)
    with torch.no_grad():
        slide = P.slide_inference(model, images, crop=crop, stride=(7, 9))
        whole = P.whole_inference(model, images)
    assert torch.equal(slide, whole)


def test_model_outputs_of_another_size_are_resized_with_align_corners():
    inner = _tiny_model()
    model = _HalfResolution(inner)
    images = torch.randn(1, 3, 21, 30)
    with torch.no_grad():
        for align_corners in (False, True):
            expected = F.interpolate(inner(F.avg_pool2d(images, 2, ceil_mode=True)), size=(21, 30), mode="bilinear",
                                     align_corners=align_corners)  # fmt: skip
            assert torch.equal(P.whole_inference(model, images, align_corners=align_corners), expected)


# ------------------------------------------------------------------------------------------ mmseg predict
def _uint8_images(*sizes):
    generator = torch.Generator().manual_seed(3)
    return [torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=generator) for size in sizes]


def _normalized(image, size):
    x = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False)
    if tuple(size) != tuple(image.shape[-2:]):
        x = x.round().clamp(0, 255)
    mean = torch.tensor(P.IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(P.IMAGENET_STD).view(1, 3, 1, 1) * 255
    return (x - mean) / std


@pytest.mark.parametrize("align_corners", [False, True])
def test_mmseg_whole_prediction_resizes_then_back(align_corners):
    model = _tiny_model()
    images = _uint8_images((30, 40), (45, 20), (30, 40))  # two share a resized size and a forward pass
    protocol = P.TestProtocol(scale=(96, 48), align_corners=align_corners)
    scores = P.predict_scores(model, images, protocol, batch_size=4)
    for image, score in zip(images, scores, strict=True):
        size = P.keep_ratio_size(*image.shape[-2:], (96, 48))
        with torch.no_grad():
            logits = model(_normalized(image, size))
        expected = F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=align_corners)[0]
        torch.testing.assert_close(score, expected, rtol=1e-5, atol=1e-5)


def test_mmseg_slide_prediction_uses_the_reference_windows():
    model = _tiny_model()
    (image,) = _uint8_images((50, 70))
    protocol = P.TestProtocol(scale=(120, 60), mode="slide", crop=(32, 32), stride=(21, 21))
    (score,) = P.predict_scores(model, [image], protocol)
    size = P.keep_ratio_size(50, 70, (120, 60))
    with torch.no_grad():
        logits = _mmseg_slide_reference(model, _normalized(image, size), (32, 32), (21, 21))
    expected = F.interpolate(logits, size=(50, 70), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(score, expected, rtol=1e-5, atol=1e-5)


def test_flip_tta_averages_probabilities_of_the_mirrored_view():
    model = _tiny_model()
    (image,) = _uint8_images((24, 31))
    plain = P.TestProtocol()
    (logits,) = P.predict_scores(model, [image], plain)
    (flipped,) = P.predict_scores(model, [image.flip(-1)], plain)
    (tta,) = P.predict_scores(model, [image], P.with_tta(plain, "flip"))
    torch.testing.assert_close(tta, (logits.softmax(0) + flipped.flip(-1).softmax(0)) / 2, rtol=1e-5, atol=1e-6)
    ms = P.with_tta(P.TestProtocol(scale=(64, 32)), "ms-flip")
    assert ms.ratios == P.TTA_RATIOS and ms.flip
    (probs,) = P.predict_scores(model, [image], ms)
    torch.testing.assert_close(probs.sum(0), torch.ones(24, 31))


# ------------------------------------------------------------------------------------------ semseg predict
def _semseg_reference(model, image, num_classes, base_size, crop, scales):
    """hszhao/semseg's tool/test.py (scale_process / net_process), written out with torch instead of cv2."""
    mean = [m * 255 for m in P.IMAGENET_MEAN]
    std = [s * 255 for s in P.IMAGENET_STD]
    h, w = image.shape[-2:]
    prediction = torch.zeros(num_classes, h, w)
    for scale in scales:
        long_size = round(scale * base_size)
        new_h = new_w = long_size
        if h > w:
            new_w = round(long_size / float(h) * w)
        else:
            new_h = round(long_size / float(w) * h)
        x = F.interpolate(image[None].float(), (new_h, new_w), mode="bilinear", align_corners=False)[0]
        pad_h, pad_w = max(crop - new_h, 0), max(crop - new_w, 0)
        ph, pw = int(pad_h / 2), int(pad_w / 2)
        padded = torch.stack(
            [F.pad(c, (pw, pad_w - pw, ph, pad_h - ph), value=m) for c, m in zip(x, mean, strict=True)]
        )
        full_h, full_w = padded.shape[-2:]
        stride = int(math.ceil(crop * 2 / 3))
        grid_h = int(math.ceil(float(full_h - crop) / stride) + 1)
        grid_w = int(math.ceil(float(full_w - crop) / stride) + 1)
        acc, count = torch.zeros(num_classes, full_h, full_w), torch.zeros(full_h, full_w)
        for ih in range(grid_h):
            for iw in range(grid_w):
                e_h = min(ih * stride + crop, full_h)
                e_w = min(iw * stride + crop, full_w)
                s_h, s_w = e_h - crop, e_w - crop
                crop_image = padded[:, s_h:e_h, s_w:e_w]
                x_in = torch.stack([(c - m) / s for c, m, s in zip(crop_image, mean, std, strict=True)])[None]
                x_in = torch.cat([x_in, x_in.flip(3)], 0)
                out = F.interpolate(model(x_in)["out"], (crop, crop), mode="bilinear", align_corners=True).softmax(1)
                count[s_h:e_h, s_w:e_w] += 1
                acc[:, s_h:e_h, s_w:e_w] += (out[0] + out[1].flip(2)) / 2
        acc = (acc / count)[:, ph : ph + new_h, pw : pw + new_w]
        prediction += F.interpolate(acc[None], (h, w), mode="bilinear", align_corners=False)[0]
    return prediction / len(scales)


@pytest.mark.parametrize("tta", [None, "ms-flip"])
def test_semseg_prediction_equals_the_direct_reference(tta):
    model = _HalfResolution(_tiny_model(5))  # logits at half size: resized to the crop with align_corners=True
    images = _uint8_images((30, 44), (50, 21), (9, 12))  # larger and smaller than the crop
    protocol = P.with_tta(P.TestProtocol(kind="semseg", mode="slide", base_size=48, crop=(25, 25)), tta)
    assert protocol.stride == (17, 17) and protocol.flip and protocol.average == "mean"
    scores = P.predict_scores(model, images, protocol, batch_size=6)
    scales = P.TTA_RATIOS if tta else (1.0,)
    for image, score in zip(images, scores, strict=True):
        with torch.no_grad():
            expected = _semseg_reference(model, image, 5, 48, 25, scales)
        torch.testing.assert_close(score, expected, rtol=1e-4, atol=1e-5)


def test_semseg_windows_on_the_published_settings():
    # ADE20K image 512 x 683 at scale 1.0, crop 473, stride ceil(473 * 2 / 3) = 316: a 2 x 2 grid
    assert P.semseg_windows(512, 683, (473, 473), (316, 316)) == [
        (0, 473, 0, 473), (0, 473, 210, 683), (39, 512, 0, 473), (39, 512, 210, 683)]  # fmt: skip
    with pytest.raises(ValueError, match="padded to the crop"):
        P.semseg_windows(400, 683, (473, 473), (316, 316))


# ------------------------------------------------------------------------------------------------ metrics
def test_iou_of_a_known_prediction_is_the_hand_computed_one():
    target = torch.tensor([[0, 0, 1, 1],
                           [0, 0, 1, 1],
                           [2, 2, 255, 255],
                           [2, 2, 2, 255]])  # fmt: skip
    pred = torch.tensor([[0, 1, 1, 1],
                         [0, 0, 1, 0],
                         [2, 0, 3, 3],
                         [2, 2, 2, 2]])  # fmt: skip
    matrix = P.confusion_matrix(pred, target, num_classes=5)
    # rows = truth, columns = prediction; the three 255 pixels are not counted (nor their predictions 3, 3, 2)
    assert matrix.tolist() == [[3, 1, 0, 0, 0],
                               [1, 3, 0, 0, 0],
                               [1, 0, 4, 0, 0],
                               [0, 0, 0, 0, 0],
                               [0, 0, 0, 0, 0]]  # fmt: skip
    # IoU: class 0 = 3 / (4 + 5 - 3) = 1/2, class 1 = 3 / (4 + 4 - 3) = 3/5, class 2 = 4 / (5 + 4 - 4) = 4/5;
    # classes 3 and 4: no ground truth and (counting labelled pixels only) no prediction -> zero union
    mmseg = P.segmentation_scores(matrix, average="nanmean", class_names=list("abcde"))
    assert mmseg["mIoU"] == round(100 * (1 / 2 + 3 / 5 + 4 / 5) / 3, 2) == 63.33
    assert mmseg["mAcc"] == round(100 * (3 / 4 + 3 / 4 + 4 / 5) / 3, 2) == 76.67
    assert mmseg["aAcc"] == round(100 * 10 / 13, 2) == 76.92
    assert mmseg["per_class"]["a"] == {"IoU": 50.0, "Acc": 75.0} and mmseg["per_class"]["d"] == {
        "IoU": None,
        "Acc": None,
    }
    semseg = P.segmentation_scores(matrix, average="mean")  # absent classes count 0
    assert semseg["mIoU"] == round(100 * (1 / 2 + 3 / 5 + 4 / 5) / 5, 2) == 38.0
    assert semseg["mAcc"] == round(100 * (3 / 4 + 3 / 4 + 4 / 5) / 5, 2) == 46.0
    assert semseg["aAcc"] == mmseg["aAcc"]


def test_a_class_predicted_but_absent_counts_zero_in_both_averages():
    target = torch.tensor([[0, 0], [1, 1]])
    pred = torch.tensor([[0, 2], [1, 1]])  # class 2 predicted, never true: IoU 0, Acc undefined
    scores = P.segmentation_scores(P.confusion_matrix(pred, target, 3), average="nanmean", class_names=["x", "y", "z"])
    assert scores["per_class"]["z"] == {"IoU": 0.0, "Acc": None}
    assert scores["mIoU"] == round(100 * (1 / 2 + 1 + 0) / 3, 2)
    assert scores["mAcc"] == round(100 * (1 / 2 + 1) / 2, 2)


def test_confusion_over_a_split_is_the_sum_of_its_images():
    generator = torch.Generator().manual_seed(0)
    running = P.ConfusionMatrix(4)
    total = torch.zeros(4, 4, dtype=torch.int64)
    for size in [(5, 7), (9, 3), (4, 4)]:
        target = torch.randint(0, 4, size, generator=generator)
        target[0] = 255
        scores = torch.randn(4, *size, generator=generator)
        running.update(scores, target)  # scores: argmax taken
        total += P.confusion_matrix(scores.argmax(0), target, 4)
    assert torch.equal(running.matrix, total)
    assert running.compute() == P.segmentation_scores(total)


def test_bad_labels_and_settings_are_named():
    with pytest.raises(ValueError, match=r"target values must be in 0..2 or 255, got \[0, 7\]"):
        P.confusion_matrix(torch.zeros(2, 2), torch.tensor([[0, 7], [255, 0]]), 3)
    with pytest.raises(ValueError, match="mode 'slide' needs crop and stride"):
        P.TestProtocol(mode="slide")
    with pytest.raises(ValueError, match="scale must be two positive ints"):
        P.TestProtocol(scale=(512,))
    with pytest.raises(ValueError, match="protocol must be one of mmseg, semseg"):
        P.protocol_for({}, "ade20k", kind="caffe")
    with pytest.raises(ValueError, match="semseg protocol is defined for ade20k, voc2012, cityscapes"):
        P.protocol_for({}, "seg-folder", kind="semseg")
    with pytest.raises(ValueError, match="tta must be one of flip, ms-flip"):
        P.protocol_for({}, "ade20k", tta="ms")


def test_protocol_from_an_entrys_meta():
    ade = P.protocol_for({"align_corners": False}, "ade20k")
    assert (ade.kind, ade.mode, ade.scale, ade.flip, ade.ratios) == ("mmseg", "whole", (2048, 512), False, (1.0,))
    # as the official-weights entries record it (mmsegmentation's key names)
    recorded = {
        "align_corners": True,
        "test_protocol": {
            "scale": (2049, 1025),
            "keep_ratio": True,
            "mode": "slide",
            "crop_size": (769, 769),
            "stride": (513, 513),
            "reduce_zero_label": False,
            "ignore_index": 255,
        },
    }
    city = P.protocol_for(recorded, "cityscapes", tta="flip")
    assert (city.mode, city.scale, city.crop, city.stride, city.align_corners) == (
        "slide", (2049, 1025), (769, 769), (513, 513), True)  # fmt: skip
    assert city.flip and city.ratios == (1.0,)
    semseg = P.protocol_for({}, "cityscapes", kind="semseg")
    assert (semseg.base_size, semseg.crop, semseg.stride, semseg.flip) == (2048, (713, 713), (476, 476), True)
    with pytest.raises(ValueError, match="unknown keys"):
        P.protocol_for({"test_protocol": {"scale": (2048, 512), "flip": True}}, "ade20k")
    folder = P.protocol_for({}, "seg-folder")
    assert folder.scale is None and folder.mode == "whole"
