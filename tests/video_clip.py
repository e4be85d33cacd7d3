"""A small synthetic clip for the video tests: a smooth textured background panning right by
`speed` px per frame and a striped square moving down across it (occlusions, disocclusions)."""
import numpy as np
from PIL import Image


def background(h, w, seed=0):
    # smooth colour texture H×W×3 in 0..255: a few random sinusoids per channel
    rng = np.random.default_rng(seed)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.zeros((h, w, 3))
    for k in range(3):
        for _ in range(4):
            fy, fx, ph = rng.uniform(0.03, 0.15), rng.uniform(0.03, 0.15), rng.uniform(0, 6.3)
            out[..., k] += np.sin(fy * gy + fx * gx + ph)
    return (127.5 + 30 * out).clip(0, 255)


def frames(n, h=36, w=48, speed=2, seed=0):
    # -> [H×W×3 uint8]: the background moving right by speed px per frame, a square moving down
    bg = background(h, w + speed * n, seed)
    out = []
    for t in range(n):
        f = bg[:, speed * (n - t): speed * (n - t) + w].copy()
        y, x, s = 2 + 3 * t, w // 3, h // 3
        stripes = np.where((np.arange(s)[:, None] + np.arange(s)[None]) % 6 < 3, 230.0, 40.0)
        f[y:y + s, x:x + s] = stripes[: max(0, min(s, h - y))][..., None] * [1.0, 0.6, 0.2]
        out.append(f.astype(np.uint8))
    return out


def write_folder(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(images):
        Image.fromarray(f).save(folder / f"f{i:03d}.png")
    return folder
