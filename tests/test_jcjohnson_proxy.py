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


def test_the_estimate_against_his_picture_scales_a_stand_ins_ratios_by_the_calibration(tmp_path):
    # held out (a stand-in, a calibrated painting): nst / stand-in × stand-in / his; his own picture or
    # an uncalibrated painting: no estimate
    from bench_time_to_picture import estimate_against_his
    from jcjohnson_proxy import CALIBRATION
    images = tmp_path / "images"
    final = dict(zip(["content", "b1", "b2", "b3", "b4", "b5"], [1.0, 2.0, 1.0, 1.0, 4.0, 0.5]))
    line, = estimate_against_his(final, "shipwreck.jpg", tmp_path / "held" / "cat_shipwreck.png", images)
    cal = CALIBRATION["shipwreck.jpg"]
    assert f"worst {max(v * c for v, c in zip(final.values(), cal)):.3g}." in line
    assert f" {4.0 * cal[4]:.3g} " in line
    assert estimate_against_his(final, "shipwreck.jpg", images / "reference" / "x.png", images) == []
    assert estimate_against_his(final, "scream.jpg", tmp_path / "held" / "x.png", images) == []
