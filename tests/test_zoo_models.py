"""Shapes, forward/backward at two input sizes, kernel path == reference composite, bad inputs."""

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.models.backbones import ZF5, DilatedResNet
from zoo.models.pspnet import PyramidPoolingModule


def _seed():
    torch.manual_seed(0)


# ----------------------------------------------------------------------------------------------- PSPNet
@pytest.mark.parametrize("size", [(65, 73), (50, 37)])
def test_pspnet_resnet50_eval_shapes_any_size(size):
    _seed()
    model = zoo.pspnet_resnet50(num_classes=5, aux_loss=True).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert list(out) == ["out"]  # aux only in training
    assert out["out"].shape == (2, 5, *size)
    assert torch.isfinite(out["out"]).all()


def test_pspnet_training_returns_aux_and_backpropagates():
    _seed()
    model = zoo.pspnet_resnet50(num_classes=4, aux_loss=True).train()
    x = torch.randn(2, 3, 41, 49)
    out = model(x)
    assert set(out) == {"out", "aux"}
    assert out["aux"].shape == out["out"].shape == (2, 4, 41, 49)
    target = torch.randint(0, 4, (2, 41, 49))
    target[:, :3] = 255  # ignored pixels
    loss = zoo.pspnet_loss(out, target)
    expected = F.cross_entropy(out["out"], target, ignore_index=255) + 0.4 * F.cross_entropy(
        out["aux"], target, ignore_index=255
    )
    torch.testing.assert_close(loss, expected)
    loss.backward()
    for name in ("backbone.stem.0.weight", "ppm.stages.3.0.weight", "classifier.2.weight", "aux_classifier.2.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_pspnet_without_aux_head_has_no_aux_output():
    model = zoo.pspnet_resnet50(num_classes=3).train()
    assert model.aux_classifier is None
    assert list(model(torch.randn(2, 3, 33, 33))) == ["out"]


def test_pspnet_resnet101_shapes():
    _seed()
    model = zoo.pspnet_resnet101(num_classes=3).eval()
    assert sum(1 for _ in model.backbone.layer3) == 23
    with torch.no_grad():
        assert model(torch.randn(1, 3, 33, 41))["out"].shape == (1, 3, 33, 41)


def test_pspnet_architecture_matches_the_paper():
    model = zoo.pspnet_resnet50(num_classes=21, aux_loss=True)
    stem_convs = [m for m in model.backbone.stem if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in stem_convs] == [(3, 64, 2), (64, 64, 1), (64, 128, 1)]
    assert model.backbone.layer1[0].conv1.in_channels == 128
    # output stride 8; semseg dilates every block of layer3 by 2 and of layer4 by 4
    assert {b.conv2.dilation for b in model.backbone.layer3} == {(2, 2)}
    assert {b.conv2.dilation for b in model.backbone.layer4} == {(4, 4)}
    assert model.ppm.bins == [1, 2, 3, 6]
    for stage in model.ppm.stages:
        conv = stage[0]
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.bias) == (2048, 512, (1, 1), None)
    head_conv = model.classifier[0][0]
    assert (head_conv.in_channels, head_conv.out_channels, head_conv.kernel_size) == (4096, 512, (3, 3))
    assert model.classifier[1].p == 0.1 and isinstance(model.classifier[1], torch.nn.Dropout2d)
    assert model.aux_classifier[0][0].in_channels == 1024 and model.aux_classifier[0][0].out_channels == 256
    assert model.align_corners is True


def test_dilated_resnet_options():
    mmseg_like = DilatedResNet(50, stem_widths=(32, 32, 64), contract_dilation=True)
    assert [b.conv2.dilation[0] for b in mmseg_like.layer3] == [1] + [2] * 5
    assert [b.conv2.dilation[0] for b in mmseg_like.layer4] == [2, 4, 4]
    assert mmseg_like.layer1[0].conv1.in_channels == 64
    c3, c4 = mmseg_like(torch.randn(1, 3, 64, 64))
    assert c3.shape == (1, 1024, 8, 8) and c4.shape == (1, 2048, 8, 8)
    torchvision_stem = DilatedResNet(50, stem_widths=None)
    assert torchvision_stem.stem[0].kernel_size == (7, 7)
    with pytest.raises(TypeError, match="stem_widths"):
        DilatedResNet(50, stem_widths=(64, 128))
    with pytest.raises(ValueError, match="depth"):
        DilatedResNet(34)


@pytest.mark.triton_path
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("size", [(9, 11), (6, 6)])
def test_pyramid_pooling_kernel_path_equals_per_bin_composite(align_corners, size):
    _seed()
    ppm = PyramidPoolingModule(in_channels=16, bins=(1, 2, 3, 6), channels=4, align_corners=align_corners).eval()
    for stage in ppm.stages:  # non-trivial BN statistics
        stage[1].running_mean.uniform_(-1, 1)
        stage[1].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 16, *size)
    fused = ppm(x)
    # the textbook PPM: pool each bin separately, conv/bn/relu, upsample, concat
    maps = [x]
    for n, stage in zip((1, 2, 3, 6), ppm.stages, strict=True):
        y = stage(F.adaptive_avg_pool2d(x, n))
        maps.append(F.interpolate(y, size=size, mode="bilinear", align_corners=align_corners))
    expected = torch.cat(maps, 1)
    assert fused.shape == (2, 16 + 4 * 4, *size)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
    with zoo.kernel_path(ppm, False):
        assert ppm.use_kernels is False
        torch.testing.assert_close(ppm(x), expected, rtol=1e-5, atol=1e-5)
    assert ppm.use_kernels is True


@pytest.mark.triton_path
def test_pspnet_kernel_path_equals_reference_path():
    _seed()
    model = zoo.pspnet_resnet50(num_classes=3).eval()
    x = torch.randn(1, 3, 49, 57)
    with torch.no_grad():
        fused = model(x)["out"]
        with zoo.kernel_path(model, False):
            plain = model(x)["out"]
    # the avg pooling sums in another order (fp32 rounding), amplified by the 2048->512 convs and BN
    torch.testing.assert_close(fused, plain, rtol=2e-4, atol=2e-4)


# ----------------------------------------------------------------------------------------------- SPP-net
def test_zf5_trunk_matches_the_paper_map_sizes():
    trunk = ZF5()
    convs = [m for m in trunk if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (96, 7, 2), (256, 5, 2), (384, 3, 1), (384, 3, 1), (256, 3, 1)
    ]  # fmt: skip
    x = torch.randn(1, 3, 224, 224)
    sizes = {}
    for name, layer in trunk.named_children():
        x = layer(x)
        sizes[name] = x.shape[-1]
    assert (sizes["pool1"], sizes["conv2"], sizes["conv5"]) == (55, 27, 13)


def test_zf5_minimum_input_size_is_23():
    trunk = ZF5(width=0.125)
    assert trunk(torch.randn(1, 3, 23, 23)).shape[-2:] == (1, 1)
    with pytest.raises(RuntimeError):  # PyTorch itself cannot run 22x22: 23 is the true minimum
        trunk(torch.randn(1, 3, 22, 22))
    model = zoo.sppnet_zf5(num_classes=3, width=0.125, representation_size=16)
    with pytest.raises(ValueError, match="at least 23x23"):
        model(torch.randn(1, 3, 22, 64))


@pytest.mark.parametrize("size", [(23, 23), (224, 224), (97, 131)])
def test_sppnet_zf5_any_size_and_batch(size):
    _seed()
    model = zoo.sppnet_zf5(num_classes=7, width=0.25, representation_size=32).eval()
    for batch in (1, 3):
        assert model(torch.randn(batch, 3, *size)).shape == (batch, 7)


def test_sppnet_zf5_default_is_the_papers_network():
    model = zoo.sppnet_zf5()
    assert model.levels == [6, 3, 2, 1]
    assert model.fc6[0].in_features == 12800 and model.fc6[0].out_features == 4096
    assert model.fc7[0].out_features == 4096 and model.classifier.out_features == 1000
    assert isinstance(model.fc6[2], torch.nn.Dropout) and isinstance(model.fc7[2], torch.nn.Dropout)


@pytest.mark.triton_path
def test_sppnet_pooled_features_equal_adaptive_max_composite():
    _seed()
    model = zoo.sppnet_zf5(num_classes=3, width=0.25, representation_size=16).eval()
    x = torch.randn(2, 3, 100, 77)
    fmap = model.features(x)
    expected = torch.cat([F.adaptive_max_pool2d(fmap, n).flatten(1) for n in (6, 3, 2, 1)], 1)
    torch.testing.assert_close(model.pooled_features(x), expected, rtol=0, atol=0)
    with zoo.kernel_path(model, False):
        torch.testing.assert_close(model.pooled_features(x), expected, rtol=0, atol=0)


def test_sppnet_resnet50_two_sizes_forward_backward():
    _seed()
    model = zoo.sppnet_resnet50(num_classes=5, representation_size=32)
    assert model.fc6[0].in_features == 2048 * 50
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)
    out = model(torch.randn(2, 3, 48, 40))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert model.features.conv1.weight.grad is not None


def test_sppnet_multi_size_training_loss_decreases():
    """The paper's multi-size training: the input size changes from step to step, same weights."""
    _seed()
    model = zoo.sppnet_zf5(num_classes=4, width=0.25, representation_size=64, dropout=0.0)
    labels = torch.arange(8) % 4
    images = 0.5 * torch.randn(8, 3, 48, 48)
    for i, label in enumerate(labels.tolist()):  # class c: bright quadrant c (survives rescaling)
        row, col = divmod(label, 2)
        images[i, :, row * 24 : (row + 1) * 24, col * 24 : (col + 1) * 24] += 2.0
    sizes = [48, 40, 56]  # the same images at a different size every step
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(18):
        size = sizes[step % len(sizes)]
        batch = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        loss = F.cross_entropy(model(batch), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3, losses


# ----------------------------------------------------------------------------------------------- DeconvNet
def test_deconvnet_two_sizes_forward_backward():
    _seed()
    model = zoo.deconvnet_vgg16(num_classes=6, width=1 / 16)
    for size in [(224, 224), (241, 263)]:
        out = model(torch.randn(2, 3, *size))
        assert out.shape == (2, 6, *size)
        out.square().mean().backward()
    assert model.encoder[0][0][0].weight.grad is not None
    assert model.decoder[-1][-1][0].weight.grad is not None


def test_deconvnet_default_is_the_papers_network():
    model = zoo.deconvnet_vgg16()
    convs = [block[0] for stage in model.encoder for block in stage]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert model.fc6[0].kernel_size == (7, 7) and model.fc6[0].padding == (0, 0) and model.fc6[0].out_channels == 4096
    assert model.fc7[0].kernel_size == (1, 1) and model.fc7[0].out_channels == 4096
    assert isinstance(model.deconv_fc6[0], torch.nn.ConvTranspose2d) and model.deconv_fc6[0].out_channels == 512
    deconvs = [block[0] for stage in model.decoder for block in stage]
    assert all(isinstance(d, torch.nn.ConvTranspose2d) for d in deconvs)
    assert [d.out_channels for d in deconvs] == [512, 512, 512, 512, 512, 256, 256, 256, 128, 128, 64, 64, 64]
    assert model.classifier.out_channels == 21


def test_deconvnet_unpools_with_the_encoder_switches():
    """Max unpooling puts each value back where the encoder's max came from (paper Fig. 3)."""
    model = zoo.deconvnet_vgg16(num_classes=2, width=1 / 16).eval()
    x = torch.randn(1, 3, 230, 230)
    with torch.no_grad():
        first = model.encoder[0](x)
        pooled, switches = F.max_pool2d_with_indices(first, 2, 2)
        unpooled = F.max_unpool2d(pooled, switches, 2, 2, output_size=first.shape[-2:])
    assert unpooled.shape == first.shape
    kept = unpooled != 0
    torch.testing.assert_close(unpooled[kept], first[kept])
    assert kept.sum() <= pooled.numel()


def test_deconvnet_minimum_input_size_is_224():
    model = zoo.deconvnet_vgg16(num_classes=2, width=1 / 16).eval()
    assert 223 // 32 < 7 <= 224 // 32  # pool5 side is floor(H / 32); fc6 needs 7
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 300)).shape == (1, 2, 224, 300)
        with pytest.raises(ValueError, match="at least 224x224"):
            model(torch.randn(1, 3, 223, 300))
        with pytest.raises(ValueError, match="at least 224x224"):
            model(torch.randn(1, 3, 300, 200))


# ----------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "name,kwargs,size",
    [
        ("pspnet_resnet50", {"num_classes": 2}, 33),
        ("sppnet_zf5", {"num_classes": 2, "width": 0.125, "representation_size": 8}, 64),
        ("deconvnet_vgg16", {"num_classes": 2, "width": 1 / 16}, 224),
    ],
)
def test_bad_inputs_give_clear_errors(name, kwargs, size):
    model = zoo.get_model(name, **kwargs).eval()
    with pytest.raises(ValueError, match="3 channels, got 1"):
        model(torch.randn(1, 1, size, size))
    with pytest.raises(ValueError, match="4-D"):
        model(torch.randn(3, size, size))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(1, 3, size, size, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[1.0]])
