"""SPP-net's single-size vs multi-size training claim (He et al., Sec. 2.3 / Table 2), measured on our data.

    python recipes/sppnet_multisize.py --train            # both runs (same model, steps, data, seed), then the table
    python recipes/sppnet_multisize.py --single DIR --multi DIR   # the table of two existing checkpoints

The two runs differ only in ``--multi-size``: every step of the multi-size run resizes its batch to
one of 48, 64, 80 pixels in turn; the single-size run always uses 64. Both are evaluated on the full
classification test split at several square test sizes (top-1 / top-5 accuracy, %). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMON = ["sppnet_zf5", "-k", "width=0.25", "-k", "representation_size=256", "--epochs", "8", "--batch-size", "32",
          "--image-size", "64", "--lr", "3e-4"]  # fmt: skip
MULTI = ["--multi-size", "48,64,80"]
TEST_SIZES = (48, 64, 96, 128)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--train", action="store_true", help="train both classifiers first (2-core CPU: ~15-30 min each)"
    )
    parser.add_argument("--single", default="runs/sppnet_zf5_single", help="single-size checkpoint directory")
    parser.add_argument("--multi", default="runs/sppnet_zf5_multi", help="multi-size checkpoint directory")
    parser.add_argument("--sizes", default=",".join(map(str, TEST_SIZES)), help="test sizes")
    args = parser.parse_args(argv)
    if args.train:
        for extra, output in (([], args.single), (MULTI, args.multi)):
            command = [sys.executable, "-m", "zoo", "train", *COMMON, *extra, "--output", output]
            subprocess.run(command, cwd=ROOT, check=True)

    from zoo.engine.evaluate import evaluate, load_model

    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for label, directory in (("single-size (64)", args.single), ("multi-size (48, 64, 80)", args.multi)):
        model, _ = load_model("sppnet_zf5", str(Path(directory).resolve()))
        results = [evaluate(model, image_size=size) for size in sizes]
        rows.append(f"| {label} | " + " | ".join(f"{r['acc@1']:.2f} / {r['acc@5']:.2f}" for r in results) + " |")
    print("| training | " + " | ".join(f"test {s}x{s}" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
