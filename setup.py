import re

from setuptools import setup

# One top-level package, `nst`. The repository keeps kernels/ and weights/ beside nst/ (the layout
# shows the architecture); installed, they are the subpackages nst.kernels and nst.weights.
PACKAGE_DIR = {"nst": "nst", "nst.kernels": "kernels", "nst.weights": "weights"}
PACKAGES = ["nst", "nst.io", "nst.run", "nst.cli", "nst.backends", "nst.batch", "nst.video", "nst.kernels",
            "nst.kernels.cuda", "nst.kernels.cuda.host", "nst.weights", "nst.web"]
WEB = ["aiohttp>=3.9"]
# nst video: optical flow (OpenCV's DIS) and video files (PyAV ships FFmpeg in its wheel)
VIDEO = ["opencv-python-headless>=4.8", "av>=12"]
# the version is written once, in nst/__init__.py (nst --version prints it)
VERSION = re.search(r'^__version__ = "([^"]+)"', open("nst/__init__.py", encoding="utf-8").read(), re.M).group(1)

setup(
    name="nst",
    version=VERSION,
    description="Neural style transfer (Gatys et al. 2015) from first principles: NumPy, Numba, CUDA",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    package_dir=PACKAGE_DIR,
    packages=PACKAGES,
    package_data={"nst.kernels": ["cuda/*.cu", "cuda/*.cuh", "cuda/host/*.h"],
                  "nst.web": ["static/*.html", "static/*.js", "static/*.css", "static/*.svg"]},
    install_requires=["numpy>=1.24", "numba>=0.58", "pillow>=10", "h5py>=3.8", "threadpoolctl>=3.8",
                      "dask[distributed]>=2024.8"],   # nst batch
    extras_require={
        "web": WEB,                                    # nst transfer --web, nst serve
        "video": VIDEO,                                # nst video
        # the web tests drive Debian's chromium (/usr/bin/chromium, installed by .ci/run) through playwright
        "test": ["pytest>=7", "pytest-benchmark>=4", "hypothesis>=6", "ruff>=0.5", *WEB, "playwright>=1.40", *VIDEO],
        "bench": ["pytest-benchmark>=4", "torch==2.13.0"],
        "gpu": ["cupy-cuda13x>=13"],
    },
    entry_points={"console_scripts": ["nst=nst.cli:main"]},
)
