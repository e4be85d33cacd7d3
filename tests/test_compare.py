"""`nst compare`: SPEC's terms for several pictures, side by side, with the tiny random-weight VGG19."""
import numpy as np
import pytest
from PIL import Image

from nst.cli import main
from nst.compare import best_of, format_table, score
from nst.objective import loss_and_grad
from nst.spec import DEFAULT_STYLE_LAYERS


@pytest.fixture
def pictures(tmp_path, rng):
    # content C and style S (both 20×24, so S scored at --style-size 24 is its own target), and a
    # third picture: random noise
    paths = {}
    for name in ("content", "style", "noise"):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(paths[name])
    return paths


def test_each_picture_is_best_where_it_should_be(pictures, tiny_weights_h5, capsys):
    p = pictures
    argv = ["compare", str(p["content"]), str(p["style"]), str(p["noise"]), "--content", str(p["content"]),
            "--style", str(p["style"]), "--style-size", "24", "--weights", str(tiny_weights_h5),
            "--backend", "numpy"]
    assert main(argv) == 0
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines()}
    assert rows["content"].rstrip(" |").endswith(str(p["content"]))      # J_c(C) = 0
    for layer in DEFAULT_STYLE_LAYERS:                                    # Ĝ(X) = Ĝ(S): J_s^l = 0
        assert rows[layer].rstrip(" |").endswith(str(p["style"])), rows[layer]
    assert "1/6" in rows["terms won"] and "5/6" in rows["terms won"]


def test_each_file_is_read_once(pictures, tiny_weights_h5, monkeypatch, capsys):
    # the checks (sizes, memory) and the scoring take the same arrays: each picture was decoded twice
    from collections import Counter

    import nst.io.image
    opened, real_open = Counter(), nst.io.image.Image.open

    def counting(path, *a, **k):
        opened[str(path)] += 1
        return real_open(path, *a, **k)
    monkeypatch.setattr(nst.io.image.Image, "open", counting)
    p = pictures
    assert main(["compare", str(p["noise"]), str(p["style"]), "--content", str(p["content"]), "--style",
                 str(p["style"]), "--style-size", "24", "--weights", str(tiny_weights_h5), "--backend", "numpy"]) == 0
    assert opened == {str(p["noise"]): 1, str(p["style"]): 1, str(p["content"]): 1}, opened


def test_scores_are_spec_terms(rng, tiny_weights):
    # the same numbers as loss_and_grad with α = β = 1, λ_l = 1; the style resized to --style-size;
    # pictures of two sizes, both scored at the smaller (the content resized to it): each had been
    # scored at its own size, J_c summing over 2.4× the pixels for the larger
    content = rng.uniform(0, 255, (26, 30, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (40, 20, 3)).astype(np.float32)
    small = rng.uniform(0, 255, (17, 19, 3)).astype(np.float32)
    big = rng.uniform(0, 255, (26, 30, 3)).astype(np.float32)
    got = score([big, small], content, style, style_side=32, weights=tiny_weights)
    from nst.io.image import resize, resize_longest
    for pic, s in zip((resize(big, 17, 19), small), got):
        r = loss_and_grad(resize(content, 17, 19), resize_longest(style, 32), pic, content_weight=1.0,
                          style_weight=1.0, tv_weight=0.0, style_layer_weights=[1.0] * 5, weights=tiny_weights)
        assert s["content"] == pytest.approx(r.terms["content"], rel=1e-6)
        for layer in DEFAULT_STYLE_LAYERS:
            assert s[layer] == pytest.approx(r.style_layers[layer], rel=1e-6)


def test_pictures_of_different_sizes_are_scored_at_the_smallest_and_said_so(pictures, tiny_weights_h5, capsys):
    # a 24×20 and a 48×40 picture were scored each at its own size, without a word: J_c at 4× the
    # pixels, so the larger lost on content whatever it showed
    p = pictures
    big = p["noise"].with_name("big.png")
    Image.open(p["content"]).resize((48, 40), Image.LANCZOS).save(big)
    common = ["--content", str(p["content"]), "--style", str(p["style"]), "--style-size", "24",
              "--weights", str(tiny_weights_h5), "--backend", "numpy"]
    assert main(["compare", str(big), str(p["noise"]), *common]) == 0
    out, err = capsys.readouterr()
    assert err.strip() == (f"nst: warning: the pictures differ in size ({big} 48×40, {p['noise']} 24×20): each is "
                           "scored resized to 24×20, the smallest, as scores at different sizes are not like for like")
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()}
    assert rows["content"].rstrip(" |").endswith(str(big))        # the content, enlarged and resized back
    assert main(["compare", str(p["content"]), str(p["noise"]), *common]) == 0
    assert capsys.readouterr().err == ""                            # one size: nothing said


def test_a_picture_or_content_stretched_to_another_aspect_ratio_is_said(pictures, tiny_weights_h5, capsys):
    # a 32×16 picture beside a 24×20 one was scored stretched to 24×20 (aspect 2 → 1.2), the line
    # saying only that sizes differ; so was a 24×20 content beside one 32×16 picture, without a word
    p = pictures
    wide = p["noise"].with_name("wide.png")
    Image.open(p["noise"]).resize((32, 16)).save(wide)
    common = ["--style", str(p["style"]), "--style-size", "24", "--weights", str(tiny_weights_h5), "--backend", "numpy"]
    assert main(["compare", str(wide), str(p["noise"]), "--content", str(p["content"]), *common]) == 0
    assert capsys.readouterr().err.strip() == (
        f"nst: warning: the pictures differ in size ({wide} 32×16, {p['noise']} 24×20): each is scored resized to "
        "24×20, the smallest, as scores at different sizes are not like for like; "
        f"{wide} (aspect ratio 2.00) is stretched to 24×20's, 1.20, which changes the scores")
    assert main(["compare", str(wide), "--content", str(p["content"]), *common]) == 0
    assert capsys.readouterr().err.strip() == (
        f"nst: warning: --content {p['content']} (aspect ratio 1.20) is stretched to 32×16's, 2.00, which changes "
        "the scores")
    near = p["noise"].with_name("near.png")                         # a pixel's rounding: not stretched
    Image.open(p["noise"]).resize((49, 41)).save(near)
    assert main(["compare", str(near), "--content", str(p["content"]), *common]) == 0
    assert capsys.readouterr().err == ""


def test_table_marks_the_lowest():
    scores = [{"content": 2.0, "block1_conv1": 5.0}, {"content": 3.0, "block1_conv1": 1.0}]
    assert best_of(scores) == {"content": [0], "block1_conv1": [1]}
    table = format_table(["a.png", "b.png"], scores)
    assert "| content | **2** | 3 | a.png |" in table
    assert "| block1_conv1 | 5 | **1** | 5 | b.png |" in format_table(["a.png", "b.png"], scores, ratio_to=1)
    assert "| block1_conv1 | 5 | **1** | b.png |" in table


def test_pictures_equal_as_shown_all_are_best():
    # two pictures tied on a term (equal at the 4 significant digits shown) bolded only the first,
    # and only it was named best and won the term
    scores = [{"content": 2.0, "block1_conv1": 1.00001}, {"content": 2.0, "block1_conv1": 1.0},
              {"content": 2.001, "block1_conv1": 1.0004}]
    assert best_of(scores) == {"content": [0, 1], "block1_conv1": [0, 1, 2]}
    table = format_table(["a.png", "b.png", "c.png"], scores)
    assert "| content | **2** | **2** | 2.001 | a.png, b.png |" in table
    assert "| block1_conv1 | **1** | **1** | **1** | a.png, b.png, c.png |" in table    # 1.0004 shows as 1
    assert "| terms won | 2/2 | 2/2 | 1/2 | |" in table


def test_missing_picture_is_a_one_line_error(pictures, tiny_weights_h5, capsys):
    assert main(["compare", str(pictures["noise"].with_name("missing.png")), "--content",
                 str(pictures["content"]), "--style", str(pictures["style"]),
                 "--weights", str(tiny_weights_h5), "--backend", "numpy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("nst: error: ") and "missing.png" in err


def test_scoring_that_cannot_fit_is_refused_before_the_work(pictures, tiny_weights_h5, monkeypatch, capsys):
    # the net over the largest picture (or the style at --style-size) against the free memory
    import nst.objective
    monkeypatch.setattr("nst.memory.available", lambda backend: 100_000)   # decodes, cannot score
    monkeypatch.setattr(nst.objective.Objective, "__init__", lambda *a, **k: pytest.fail("scored"))
    p = pictures
    assert main(["compare", str(p["noise"]), "--content", str(p["content"]), "--style", str(p["style"]),
                 "--style-size", "24", "--weights", str(tiny_weights_h5), "--backend", "numpy"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nst: error: scoring needs about") and "--style-size" in err and "\n" not in err


@pytest.mark.parametrize("pictures, error, needle", [
    (lambda c: [c, c[:10, :12]], ValueError, r"^picture 2 \(12×10\) is too small for block5_conv1"),  # "content image"
    (lambda c: [np.zeros((0, 0, 3))], ValueError, r"^picture 1 is empty \(shape \(0, 0, 3\)\)"),  # Pillow's error
    (lambda c: [c, np.full(c.shape, np.nan)], ValueError, r"^picture 2 holds NaN or inf$"),  # "picture 2 image"
    (lambda c: c, TypeError, r"^pictures is a list of H×W×3 images: put one picture in a list, \[picture\]$"),
])
def test_score_names_the_picture_it_cannot_score(rng, tiny_weights, pictures, error, needle):
    # a small picture was blamed on the content; a 0×0 one gave Pillow's "height and width must be
    # > 0"; one array for the list was read row by row ("picture image must be H×W×3 RGB, got (24, 3)")
    c = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    with pytest.raises(error, match=needle):
        score(pictures(c), c, c, weights=tiny_weights)


@pytest.mark.parametrize("pictures, style_side, needle", [
    ([], 512, r"^pictures is empty: give at least one picture to score$"),      # min() arg is an empty sequence
    (None, 8, r"^style_side: size 8 is out of range"),                          # "size 8": which size?
])
def test_score_names_an_empty_list_and_a_bad_style_side(rng, tiny_weights, pictures, style_side, needle):
    c = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=needle):
        score([c] if pictures is None else pictures, c, c, style_side=style_side, weights=tiny_weights)


def test_compare_takes_every_backend_transfer_takes():
    # --backend cuda-cpu was refused ("invalid choice"), though scoring runs on it as on the others
    from nst.backends import NAMES
    from nst.cli.parser import build_parser
    for name in ("auto", *NAMES):
        args = build_parser().parse_args(["compare", "x.png", "--content", "c.png", "--style", "s.png",
                                          "--backend", name])
        assert args.backend == name
