"""OFA's published Note10 subnets (published.yaml) re-scored with this study's models: their Note10
lookup-table latency (w1.2 nets only: the tables describe the w1.2 network) and the accuracy OFA's
released predictor gives them. Writes published.md and published.csv beside this file and the table
into README.md (block ``published``).

    python experiments/search_ofa_note10/published.py [data root]
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import yaml

from hwnas.data.root import resolve_data_dir
from hwnas.estimators import LookupTableEstimator
from hwnas.report import inject
from hwnas.search.accuracy import OFAAccuracyPredictor
from hwnas.spaces import get_space

HERE = Path(__file__).resolve().parent
STAGE_CHANNELS = {1.0: [24, 40, 80, 112, 160], 1.2: [32, 48, 96, 136, 192]}


def arch_of(net: dict, width: float, resolution: int) -> dict:
    """OFA net.config -> {"ks","e","d","r"}: blocks grouped into stages by output channels (the
    first block, 16/24 ch with expand 1, is fixed in the space); unused block slots filled with 3."""
    ks, e, d = [3] * 20, [3] * 20, []
    blocks = [b["mobile_inverted_conv"] for b in net["blocks"][1:]]
    for s, channels in enumerate(STAGE_CHANNELS[width]):
        stage = [b for b in blocks if b["out_channels"] == channels]
        d.append(len(stage))
        for j, b in enumerate(stage):
            ks[4 * s + j], e[4 * s + j] = int(b["kernel_size"]), int(b["expand_ratio"])
    assert sum(d) == len(blocks), "every block belongs to a stage"
    return {"ks": ks, "e": e, "d": d, "r": resolution}


def main(data_dir: str | None = None) -> None:
    root = resolve_data_dir(data_dir)
    points = yaml.safe_load((HERE / "published.yaml").read_text())["points"]
    resolutions = sorted({p["resolution"] for p in points if 112 <= p["resolution"] <= 239} | {160, 224})
    spaces = {w: get_space("ofa_mbv3", width_mult=w, resolutions=resolutions) for w in (1.0, 1.2)}
    lut = LookupTableEstimator(path="ofa/note10_lut", data_dir=str(root))
    acc = OFAAccuracyPredictor(data_dir=str(root))
    rows = []
    for p in points:
        net = json.loads((root / "ofa" / "specialized" / p["folder"] / "net.config").read_text())
        a = arch_of(net, p["width"], p["resolution"])
        lut_ms = pred = ""
        if 112 <= p["resolution"] <= 239:
            space = spaces[p["width"]]
            arch = space.from_strings([json.dumps(a, separators=(",", ":"))])
            pred = f"{float(acc.prepare(space).predict(space, arch)[0]):.2f}"
            if p["width"] == 1.2 and p["resolution"] in lut.tables:
                lut_ms = f"{float(lut.predict(space, arch)[0]):.2f}"
        rows.append([p["latency_ms"], p["top1"], p["finetune_epochs"], p["width"], p["resolution"], lut_ms, pred,
                     json.dumps(a, separators=(",", ":"))])
    header = ["published_latency_ms", "published_top1", "finetune_epochs", "width", "resolution",
              "our_lut_latency_ms", "our_predicted_top1", "arch"]
    with open(HERE / "published.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    md = ["## OFA's published Note10 subnets, re-scored with our LUT and accuracy predictor", "",
          "| " + " | ".join(header[:-1]) + " |", "|" + "---|" * (len(header) - 1)]
    md += ["| " + " | ".join(str(v) if v != "" else "—" for v in r[:-1]) + " |" for r in rows]
    (HERE / "published.md").write_text("\n".join(md) + "\n")
    inject(HERE / "README.md", "published", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
