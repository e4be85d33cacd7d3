"""How far the default start, the photo in the painting's colours, is from the photo: its terms at a run's first scale.

docs/maths.md ("The objective") says the recoloured start barely moves the content term and takes a good
part of the style terms' way. This prints the numbers behind that, per pair, at the first scale of
a default run (the content at its longest side, the style as a run resizes it, the default layers
and "auto" layer weights, built by nst.run.run.Run as a run builds them):

    J_c(X₀) / E_c          the start's content term against E_c = Σ a(C)² (auto's content scale)
    J_s(X₀) / J_s(C)       the start's style term, Σ_l λ_l·J_s^l, against the photo's own
    the picture's J_c / E_c  the default picture's, at its own size, with --picture (a whole default run)

    NST_IMAGES=../shared/images python bench/recolored_start.py --pairs starry,shipwreck
    python bench/recolored_start.py --pairs "$(python bench/held_out.py pairs DIR)" --picture
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_time_to_picture import pair_inputs  # noqa: E402
from nst.io.image import load_image  # noqa: E402
from nst.objective import content_energy  # noqa: E402
from nst.run.run import Run, initial_image  # noqa: E402
from nst.run.settings import DEFAULTS  # noqa: E402
from shared_images import FOLDER  # noqa: E402


def style_term(result):
    # Σ_l λ_l·J_s^l of one evaluation (nst.objective's LossResult: terms["style"] is that sum)
    return result.terms["style"]


def content_share(run, side, image):
    # J_c(image) / E_c at a run's scale of longest side `side` (image resized to it)
    from nst.io.image import resize
    c, styles = run.images_at(side)
    obj = run.objective(c, styles)
    return obj(resize(image, *c.shape[:2])).terms["content"] / content_energy(obj.content_targets)


def start_terms(content, style, weights, picture):
    # -> (J_c(X₀)/E_c, J_s(X₀)/J_s(C) at the first scale, the default picture's J_c/E_c at its
    # own size or None)
    settings = DEFAULTS.replace(weights=weights)
    run = Run(content, style, settings, log=lambda m: None)
    c, styles = run.images_at(run.sizes[0])
    obj = run.objective(c, styles)
    start, photo = obj(initial_image(settings.init, c, styles[0], settings.seed)), obj(c)
    end = content_share(run, run.sizes[-1], Run(content, style, settings, log=lambda m: None).run()) \
        if picture else None
    return start.terms["content"] / content_energy(obj.content_targets), style_term(start) / style_term(photo), end


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="starry,shipwreck",
                    help="names (bench_pictures.PAIRS), or NAME=CONTENT,STYLE,REFERENCE (';' separates several)")
    ap.add_argument("--picture", action="store_true", help="also run the default picture (about a minute a pair)")
    ap.add_argument("--weights", default=None)
    args = ap.parse_args()
    specs = args.pairs.split(";") if "=" in args.pairs else args.pairs.split(",")
    print("| pair | first scale | J_c(X₀) / E_c | J_s(X₀) / J_s(C) | the picture's J_c / E_c |")
    print("|---|---|---|---|---|")
    for spec in specs:
        name, c, s, _ = pair_inputs(spec, FOLDER)
        content, style = load_image(c), load_image(s)
        jc, js, end = start_terms(content, style, args.weights, args.picture)
        side = Run(content, style, DEFAULTS).sizes[0]
        print(f"| {name} | {side} px | {jc:.1%} | {js:.1%} | {'—' if end is None else f'{end:.1%}'} |")


if __name__ == "__main__":
    main()
