"""Cross-check ``zoo.convert.from_mmseg`` against mmsegmentation's own model code (not needed by the tests).

For each mmsegmentation PSPNet config below, builds mmsegmentation's model from the config that ships in the
``mmsegmentation`` wheel, gives it random weights and non-trivial BN statistics, saves it in the published
layout (``{"meta", "state_dict"}``), converts the file and compares the logits at the input size (eval mode,
mmsegmentation's ``decode_head`` output resized with the head's ``align_corners``, as its whole-image
inference does). Prints one line per config with the max abs difference.

Needs mmsegmentation 1.2.2, mmengine, mmcv-lite 2.1.0 (+ ftfy, regex, opencv-python-headless) and a stand-in
for ``mmcv.ops`` (compiled ops that PSPNet does not use), which this script installs in ``sys.modules``::

    pip install mmsegmentation==1.2.2 mmengine mmcv-lite==2.1.0 ftfy regex opencv-python-headless
    PYTHONPATH=. python recipes/check_mmseg_conversion.py
"""

from __future__ import annotations

import sys
import tempfile
import types
from pathlib import Path

import torch
from torch import nn

CONFIGS = [
    "pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py",
    "pspnet_r18-d8_4xb2-80k_cityscapes-769x769.py",
    "pspnet_r50-d8_4xb4-160k_ade20k-512x512.py",
    "pspnet_r101-d8_4xb4-40k_voc12aug-512x512.py",
    "pspnet_r50-d8_4xb2-80k_cityscapes-769x769.py",
]


def _stand_in_mmcv_ops() -> None:
    def missing(*args, **kwargs):
        raise RuntimeError("mmcv.ops is not installed (mmcv-lite); PSPNet does not use it")

    ops = types.ModuleType("mmcv.ops")
    for name in ("point_sample", "sigmoid_focal_loss"):
        setattr(ops, name, missing)
    for name in ("PSAMask", "CrissCrossAttention", "DeformConv2d", "ModulatedDeformConv2d",
                 "MultiScaleDeformableAttention"):  # fmt: skip
        setattr(ops, name, type(name, (), {"__init__": missing}))
    deform = types.ModuleType("mmcv.ops.multi_scale_deform_attn")
    deform.MultiScaleDeformableAttention = ops.MultiScaleDeformableAttention
    sys.modules.setdefault("mmcv.ops", ops)
    sys.modules.setdefault("mmcv.ops.multi_scale_deform_attn", deform)


def _randomize(module: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.2, 0.6)
            nn.init.uniform_(m.bias, -0.2, 0.2)
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return module


def main() -> int:
    _stand_in_mmcv_ops()
    import mmseg
    import mmseg.models  # noqa: F401  (registers the models)
    from mmengine import Config
    from mmengine.registry import init_default_scope
    from mmseg.models.utils import resize
    from mmseg.registry import MODELS

    from zoo.convert import from_mmseg

    init_default_scope("mmseg")
    configs = Path(mmseg.__file__).parent / ".mim" / "configs" / "pspnet"
    print(f"mmsegmentation {mmseg.__version__}, torch {torch.__version__}")
    worst = 0.0
    for name in CONFIGS:
        cfg = Config.fromfile(str(configs / name))
        cfg.model.pretrained = None
        cfg.model.backbone.init_cfg = None
        for part in ("backbone", "decode_head", "auxiliary_head"):  # SyncBN -> BN: same eval-mode function
            cfg.model[part].norm_cfg = {"type": "BN", "requires_grad": True}
        reference = _randomize(MODELS.build(cfg.model)).eval()
        align = bool(cfg.model.decode_head.align_corners)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkpoint.pth"
            torch.save({"meta": {"config": cfg.pretty_text}, "state_dict": reference.state_dict()}, path)
            model = from_mmseg(path)
        assert model.align_corners is align, (name, model.align_corners)
        for size in ((65, 97), (96, 128)):
            x = torch.randn(1, 3, *size)
            with torch.no_grad():
                expected = resize(reference.decode_head(reference.extract_feat(x)), size=x.shape[2:],
                                  mode="bilinear", align_corners=align)  # fmt: skip
                actual = model(x)["out"]
            diff = (actual - expected).abs().max().item()
            worst = max(worst, diff)
            print(f"{name:<48} input {size}: max abs diff {diff:.3g} (logit scale {expected.abs().max().item():.3g})")
    print(f"worst max abs diff {worst:.3g}")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
