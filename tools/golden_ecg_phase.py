"""Float64 golden for src/data/ecg-phase.ts phaseTargets / phaseAngles.

Re-states the reference's ground-truth phase (REFERENCE_SPEC 2.5): phase = zeros(length);
for each consecutive R-peak pair (start, end): phase[start:end] = np.linspace(0, 2*pi, end - start);
then keep every 8th sample and take [sin, cos]. Peaks are random (seeded) so the fixture can fail.

Run: python3 tools/golden_ecg_phase.py > tests/fixtures/golden/ecg-phase/targets.json
"""
import json
import numpy as np


def reference_phase(peaks, length):
    phase = np.zeros(length, dtype=np.float64)
    for k in range(len(peaks) - 1):
        start, end = peaks[k], peaks[k + 1]
        phase[start:end] = np.linspace(0, 2 * np.pi, end - start)
    return phase


def case(rng, length, count, min_gap, max_gap, decimation=8):
    first = int(rng.integers(0, 600))
    gaps = rng.integers(min_gap, max_gap, size=count - 1) if count > 1 else []
    peaks = [first]
    for g in gaps:
        if peaks[-1] + int(g) >= length:
            break
        peaks.append(peaks[-1] + int(g))
    phase = reference_phase(peaks, length)
    kept = phase[::decimation]
    return {
        "length": length,
        "decimation": decimation,
        "peaks": peaks,
        "phi": kept.tolist(),
        "sin": np.sin(kept).tolist(),
        "cos": np.cos(kept).tolist(),
        # Full-rate phase around each peak (i - 2 .. i + 2), to pin the indices exactly.
        "around_peaks": [[int(i), phase[max(0, i - 2):i + 3].tolist()] for i in peaks],
    }


def main():
    rng = np.random.default_rng(20261206)
    cases = [
        case(rng, 5000, 9, 300, 700),   # sinus-like
        case(rng, 5000, 14, 150, 500),  # irregular, some gaps not multiples of 8
        case(rng, 5000, 2, 800, 1200),  # a single R-R interval
        case(rng, 1000, 6, 1, 4),       # tiny gaps: linspace with num = 1, 2, 3
        case(rng, 5000, 1, 10, 20),     # one peak: phase 0 everywhere
    ]
    print(json.dumps({"numpy": np.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
