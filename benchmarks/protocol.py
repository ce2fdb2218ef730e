"""How the timing protocol's settings move the noise floor (issue #14): one set of networks, several protocols.

The main job's space (OFA MobileNetV3, width 0.25, 24-32 px) through a device (default onnxruntime): 10 probe
subnets timed in 8 sessions, each beside 20 other subnets (fresh ones per session, as job=measure's chunks),
for each (rounds, runs per block, settling runs) setting; the noise floor is the probes' leave-one-out,
drift-corrected re-measurement CV (hwnas.measure.probes), the raw CV beside it. All settings are timed in
one process, one after another, so compare them within one run only. Prints Markdown.

    python benchmarks/protocol.py [device] > benchmarks/protocol.md
"""
from __future__ import annotations

import sys
import time

import numpy as np
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from hwnas.measure.harness import time_interleaved
from hwnas.measure.probes import ProbeSet

#: (interleaved, rounds, runs per block, settling runs); not interleaved: each network's rounds one after another
SETTINGS = [(False, 200, 1, 1), (True, 30, 10, 0), (True, 30, 10, 1), (True, 60, 5, 1), (True, 100, 3, 1),
            (True, 200, 1, 0), (True, 200, 1, 1)]
SESSIONS, PROBES, COMPANY = 8, 10, 20


def main(device_option: str = "onnxruntime") -> None:
    with initialize_config_module("hwnas.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"device={device_option}", "search_space.resolutions=[24,28,32]",
                                           "search_space.width_mult=0.25", "search_space.num_classes=10"])
    space, device = instantiate(cfg.search_space), instantiate(cfg.device)
    archs = space.sample_unique(PROBES + COMPANY * SESSIONS, seed=3)
    probes = [device.compile(space, a) for a in archs[:PROBES]]
    company = [[device.compile(space, a) for a in archs[PROBES + COMPANY * s:PROBES + COMPANY * (s + 1)]]
               for s in range(SESSIONS)]
    print(f"## Noise floor by protocol: {device.name}, {PROBES} probes x {SESSIONS} sessions beside {COMPANY} "
          f"other subnets each\n")
    print("| interleaved | rounds | runs per block | settling runs | noise floor | raw (uncorrected) | seconds per session |")
    print("|---|---|---|---|---|---|---|")
    for interleaved, rounds, number, settle in SETTINGS:
        t0 = time.perf_counter()
        probe_set = None
        for s in range(SESSIONS):
            runs = [c.run for c in probes + company[s]]
            if interleaved:
                samples = time_interleaved(runs, warmup=3, repeats=rounds, number=number, seed=s, settle=settle)
            else:
                samples = [time_interleaved([r], warmup=3, repeats=rounds, number=number, settle=settle)[0] for r in runs]
            values = np.array([np.median(x) for x in samples[:PROBES]])
            if probe_set is None:
                probe_set = ProbeSet([str(i) for i in range(PROBES)], [], values)
            else:
                probe_set.record(values, str(s))
        corrected, raw = probe_set.noise_floor()
        seconds = (time.perf_counter() - t0) / SESSIONS
        print(f"| {'yes' if interleaved else 'no'} | {rounds} | {number} | {settle} | {corrected:.2%} | {raw:.2%} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
