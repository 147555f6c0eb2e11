"""SPP-net's single-size vs multi-size training claim (He et al., Sec. 2.3 / Table 2), measured on our data with
several seeds per cell.

    python recipes/sppnet_multisize.py --train                   # 2 x 3 runs (runs/sppnet_ms/{single,multi}_s{k})
    python recipes/sppnet_multisize.py                           # the table of the existing runs
    python recipes/sppnet_multisize.py --seeds 0,1,2,3 --train   # more seeds

Every run fine-tunes ``sppnet_zf5`` from the same pretrained trunk (``--weights-backbone``, the paper's start: an
ImageNet-style classification network) with the same steps, schedule and data; the two cells differ only in
``--multi-size``: each step of a multi-size run resizes its batch to one of 80, 96, 112 pixels in turn (the same
pixels per step on average), a single-size run always uses 96. Seeds change the head's initialization, the order
of the data and the flips. Every run is evaluated on the full classification test split (500 images) at several
square test sizes. Prints a Markdown table of top-1 accuracy, mean +- sample standard deviation over the seeds (%),
and writes it with every run's numbers to ``runs/sppnet_ms/results.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BACKBONE = "ZF5_Classifier_Weights.SCENES_V1"
COMMON = ["sppnet_zf5", "--weights-backbone", BACKBONE, "-k", "representation_size=256", "--epochs", "3",
          "--limit", "20000", "--batch-size", "64", "--image-size", "96", "--lr", "1e-3",
          "--log-every", "50", "--val-size", "500"]  # fmt: skip
CELLS = {"single-size (96)": [], "multi-size (80, 96, 112)": ["--multi-size", "80,96,112"]}
TEST_SIZES = (64, 96, 128, 160)


def run_dir(base: Path, cell: str, seed: int) -> Path:
    return base / f"{'multi' if cell.startswith('multi') else 'single'}_s{seed}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", action="store_true", help="train the runs first (2-core CPU: ~3 min each)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds per cell (default 0,1,2)")
    parser.add_argument("--runs", default="runs/sppnet_ms", help="directory of the runs")
    parser.add_argument("--sizes", default=",".join(map(str, TEST_SIZES)), help="test sizes")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(args.runs)
    if args.train:
        for seed in seeds:
            for cell, extra in CELLS.items():
                output = run_dir(base, cell, seed)
                if (output / "training_state.pt").is_file():  # e.g. the shipped run, trained by train_shipped.sh
                    print(f"{output}: already trained, kept", file=sys.stderr)
                    continue
                command = [sys.executable, "-m", "zoo", "train", *COMMON, *extra, "--seed", str(seed),
                           "--output", str(output)]  # fmt: skip
                subprocess.run(command, cwd=ROOT, check=True)

    from zoo.engine.evaluate import evaluate, load_model

    results: dict[str, dict[str, list[float]]] = {}
    for cell in CELLS:
        results[cell] = {str(size): [] for size in sizes}
        for seed in seeds:
            model, _ = load_model("sppnet_zf5", str(run_dir(base, cell, seed).resolve()))
            for size in sizes:
                results[cell][str(size)].append(evaluate(model, image_size=size)["acc@1"])
    lines = ["| training | " + " | ".join(f"test {s}x{s}" for s in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for cell, by_size in results.items():
        cells = [
            f"{statistics.mean(v):.1f} +- {statistics.stdev(v) if len(v) > 1 else 0.0:.1f}" for v in by_size.values()
        ]
        lines.append(f"| {cell} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(f"top-1 (%), mean +- std over seeds {seeds}\n{table}")
    base.mkdir(parents=True, exist_ok=True)
    (base / "results.json").write_text(json.dumps({"seeds": seeds, "acc@1": results, "table": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
