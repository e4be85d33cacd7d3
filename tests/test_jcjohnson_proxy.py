"""bench/jcjohnson_proxy.py: W, his objective less TV, is what his run minimises, from nst.compare's terms."""
import sys
from pathlib import Path

import numpy as np

from nst.compare import score
from nst.objective import Objective

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from jcjohnson_proxy import his_weighted_sum, jcjohnson_settings  # noqa: E402
from conftest import random_image  # noqa: E402


def test_his_weighted_sum_is_the_stand_ins_objective_less_tv(rng, tiny_weights):
    # W from the unweighted terms `nst compare` scores = J of the settings the stand-in runs, TV off
    h, w = 40, 56
    content, style, picture = random_image(rng, h, w), random_image(rng, 30, 44), random_image(rng, h, w)
    st = jcjohnson_settings(h, w, w, 1)
    objective = Objective(content, style, content_weight=st["content_weight"], style_weight=st["style_weight"],
                          tv_weight=0.0, style_layer_weights=st["style_layer_weights"], weights=tiny_weights,
                          log=lambda m: None)
    terms = score([picture], content, style, style_side=44, weights=tiny_weights)[0]
    np.testing.assert_allclose(his_weighted_sum(terms, h, w), objective(picture).total, rtol=1e-6)
    worse = {**terms, "block3_conv1": 2 * terms["block3_conv1"]}
    assert his_weighted_sum(worse, h, w) > his_weighted_sum(terms, h, w)
