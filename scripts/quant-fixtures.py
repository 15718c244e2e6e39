#!/usr/bin/env python3
"""Writes tests/fixtures/quants/: blocks of every GGUF type wgqa reads beyond
Q8_0/Q4_0/Q4_1, with random quants and scales, and their values as ggml's own
Python package (`gguf`, an implementation independent of wgqa's) dequantises
them. Run once; the outputs are committed: `<type>.bin` holds the blocks,
`<type>.f32` the little-endian f32 values in element order."""
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "quants"
# Type, bytes per block, and the byte offsets of its f16 scales (set to
# finite values: random bytes would make some NaN or huge).
TYPES = [
    (T.Q5_0, 22, [0]),
    (T.Q5_1, 24, [0, 2]),
    (T.Q4_K, 144, [0, 2]),
    (T.Q5_K, 176, [0, 2]),
    (T.Q6_K, 210, [208]),
    # Appended, so the random draws of the types above stay as they were.
    (T.Q2_K, 84, [80, 82]),
    (T.Q3_K, 110, [108]),
]
BLOCKS = 6


def main():
    rng = np.random.default_rng(20261202)
    OUT.mkdir(parents=True, exist_ok=True)
    for ty, size, scale_at in TYPES:
        blocks = rng.integers(0, 256, size=(BLOCKS, size), dtype=np.uint8)
        for at in scale_at:
            halves = (rng.uniform(1e-3, 0.1, BLOCKS) * rng.choice([-1, 1], BLOCKS)).astype(np.float16)
            blocks[:, at:at + 2] = halves.view(np.uint8).reshape(BLOCKS, 2)
        values = quants.dequantize(blocks, ty).astype("<f4").reshape(-1)
        assert np.isfinite(values).all()
        name = ty.name.lower()
        (OUT / f"{name}.bin").write_bytes(blocks.tobytes())
        (OUT / f"{name}.f32").write_bytes(values.tobytes())
        print(f"{name}: {BLOCKS} blocks, {values.size} values")


if __name__ == "__main__":
    main()
