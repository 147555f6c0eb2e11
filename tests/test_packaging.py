"""An installed wheel carries what a fresh clone has: the shipped weights and data, loadable offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import zoo
import zoo.hub

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_weights_and_data_that_load_offline(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(REPO)], check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("spp_zoo-*.whl")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True, timeout=600, capture_output=True)  # fmt: skip
    entries = {  # model -> its DEFAULT entry
        m: f"{zoo.get_model_weights(m).__name__}.{zoo.get_model_weights(m).DEFAULT.name}"
        for m in zoo.list_models()
        if "DEFAULT" in zoo.get_model_weights(m).__members__
    }
    assert entries, "no weights entry is registered"
    script = f"""
import json, zoo, zoo.data
loaded = {{}}
for model_name, entry in {entries!r}.items():
    model = zoo.get_model(model_name, weights=entry)
    loaded[entry] = sum(p.numel() for p in model.parameters())
image, _ = zoo.data.SceneSegmentation("test")[0]
print(json.dumps({{"zoo": zoo.__file__, "loaded": loaded, "image": list(image.shape)}}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(PYTHONPATH=str(site), HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hf"))
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["zoo"].startswith(str(site))
    assert set(report["loaded"]) == set(entries.values()) and all(n > 0 for n in report["loaded"].values())
    assert report["image"][0] == 3
    # local first: the shipped copies load silently, with no Hub attempt to report
    assert result.stderr.strip() == "", result.stderr[-2000:]
