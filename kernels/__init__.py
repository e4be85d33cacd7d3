"""Hand-written kernels, one file per op family, versions side by side: Numba for the CPU
(kernels/*.py) and CUDA (kernels/cuda/*.cu beside their Python launchers).

Both families have one registry shape, op -> versions -> callable. An op is named as the reference
function it computes (nst/ops.py, nst/losses.py, nst/flow.py) and as the Backend field that runs it,
except VIDEO_OPS; each kernel module lists its versions in VERSIONS = {op: {version: function}}. A
backend picks one version per op by name in its CHOSEN table (nst/backends/numba_backend.py,
cupy_backend.py), the video run its warp and mask versions in nst/video/flow.py's; the tests
(tests/test_ops.py) and the benchmarks run every version through the same registry, so the code
benchmarked is the code shipped. Importing this package imports no kernel module (nor Numba).
"""
import importlib


class Registry:
    """op -> versions -> callable over the kernel modules of one package (imported on first use)."""

    def __init__(self, package, modules):
        self.package = package
        self.modules = dict(modules)             # op -> the module (file) holding its versions

    @property
    def ops(self):
        return tuple(self.modules)

    def module(self, op):
        if op not in self.modules:
            raise KeyError(f"{self.package}: no op {op!r}; ops are {', '.join(self.modules)}")
        return importlib.import_module(f"{self.package}.{self.modules[op]}")

    def versions(self, op):
        # -> {version: function} for op, in the order its module lists them
        return self.module(op).VERSIONS[op]

    def get(self, op, version):
        versions = self.versions(op)
        if version not in versions:
            raise KeyError(f"{self.package} {op}: no version {version!r}; versions are {', '.join(versions)}")
        return versions[version]

    def tolerance(self, op, version):
        # -> the name of the looser nst.tolerance rule the version needs (module TOLERANCE), or None
        return getattr(self.module(op), "TOLERANCE", {}).get(version)


# ops of video's optical-flow maths (nst/flow.py), run by nst/video/flow.py on the host's frames:
# in both registries, not Backend fields (no backend's CHOSEN names them)
VIDEO_OPS = ("warp", "reliability_mask")

NUMBA = Registry(__name__, {
    "conv3x3_relu": "conv3x3_forward",
    "conv3x3_relu_backward_input": "conv3x3_backward_input",
    "maxpool2x2": "maxpool2x2",
    "maxpool2x2_backward": "maxpool2x2",
    "avgpool2x2": "maxpool2x2",
    "avgpool2x2_backward": "maxpool2x2",
    "gram": "gram_style_loss",
    "style_loss_and_grad": "gram_style_loss",
    "content_loss_and_grad": "content_loss",
    "tv_loss_and_grad": "tv_loss",
    "temporal_loss_and_grad": "temporal_loss",
    "adam_step": "adam_step",
    "warp": "flow_warp",
    "reliability_mask": "flow_mask",
})
