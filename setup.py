from setuptools import find_packages, setup

setup(
    name="nst",
    version="0.1.0",
    description="Neural style transfer (Gatys et al. 2015) from first principles: NumPy, Numba, CUDA",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["nst", "nst.*", "kernels", "kernels.*", "weights", "weights.*"]),
    package_data={"kernels": ["cuda/*.cu", "cuda/*.cuh"]},
    install_requires=["numpy>=1.24", "numba>=0.58", "pillow>=10", "h5py>=3.8", "threadpoolctl>=3"],
    extras_require={
        "test": ["pytest>=7", "pytest-benchmark>=4"],
        "bench": ["pytest-benchmark>=4", "torch==2.13.0"],
        "gpu": ["cupy-cuda13x>=13"],
    },
    entry_points={"console_scripts": ["nst=nst.cli:main"]},
)
