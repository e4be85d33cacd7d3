"""The project's real test images, read where they are (never copied into the project): $NST_IMAGES,
else ../shared/images beside the checkout. bench/ and docs/make_*.py name them through `image`, so
one that is missing is one line saying where it was looked for, not a traceback."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = Path(os.environ.get("NST_IMAGES") or ROOT.parent / "shared" / "images")


def image(name, folder=None):
    # -> folder/name (folder: FOLDER); a missing file ends the program with one line
    path = Path(folder or FOLDER) / name
    if not path.is_file():
        sys.exit(f"{path}: no such file; the benchmarks read the project's test images from $NST_IMAGES, "
                 "else ../shared/images beside the checkout")
    return path
