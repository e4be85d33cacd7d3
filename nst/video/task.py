"""What runs on a worker: the flows of a frame pair, and one frame's style transfer.

The first frame of a shot is a plain nst.run.run.Run (coarse to fine, as `nst transfer`). A later
frame is a FrameRun: one scale at the frame's size, --later-iterations iterations, starting from
the previous output warped by the flow (the content frame where the flow is unreliable), with
the temporal term τ·Σ_k J_t(X; ω_k, c_k) added to J. τ = w·E_c/255²: w (--temporal-weight) is
relative like β, since J_c/E_c and J_t/255² are both relative errors (docs/maths.md "Video").
"""
import functools
import logging
import socket
import time

import numpy as np

from nst.batch.task import one_line, warnings_field
from nst.run.warned import task_warnings
from nst.library import log_to_logger
from nst.io.image import to_uint8
from nst.objective import content_energy
from nst.run.job import Job, Outputs
from nst.run.run import Run
from nst.video import flow
from nst.video.plan import later_settings

LOG = logging.getLogger("nst.video")


def flows_task(frame, earlier, backend="numba"):
    # -> (back H×W×2, c H×W) for frame i against an earlier frame; (seconds spent) as third item.
    # backend: the run's (Settings.backend); the mask runs on its kernels' family (nst.video.flow)
    start = time.perf_counter()
    back, c = flow.flow_and_mask(frame, earlier, flow.resolve(backend))
    return back, c, time.perf_counter() - start


class FrameRun(Run):
    """A later frame of a shot: a Run whose objective carries the temporal term."""

    def __init__(self, content, styles, settings, log=log_to_logger, *, targets=(), temporal_weight=0.0, **kw):
        super().__init__(content, styles, settings, log, **kw)
        self.targets, self.temporal_weight = targets, temporal_weight

    def objective(self, content, styles):
        obj = super().objective(content, styles)
        if self.targets and self.temporal_weight > 0:
            be = obj.be
            obj.temporal_weight = self.temporal_weight * content_energy(obj.content_targets) / 255.0 ** 2
            obj.temporal = [(be.to_device(np.ascontiguousarray(t, obj.dtype)),
                             be.to_device(np.ascontiguousarray(c, obj.dtype))) for t, c in self.targets]
        return obj


def frame_task(content, styles, settings, video, earlier_outputs, flows):
    # on a worker: content frame H×W×3 uint8, styles [H×W×3], Settings, earlier outputs (uint8,
    # closest first) and their (back, c, seconds) -> {"status", "image" uint8, "terms", ...}, with
    # "warnings": [one line] when the run raised any (the client says them); the run goes through
    # nst.run.job.Job, the lifecycle of every command
    start = time.perf_counter()
    row = {"worker": _worker(), "host": socket.gethostname()}
    with task_warnings(video.get("debug")) as said:        # a scope of its own (nst.run.warned)
        row.update(run_frame(content, styles, settings, video, earlier_outputs, flows))
    return {**row, **warnings_field(said, {}), "seconds": round(time.perf_counter() - start, 3)}


def run_frame(content, styles, settings, video, earlier_outputs, flows):
    # frame_task's run -> its row's fields: status, image, terms, ... or the error
    row = {}
    try:
        if video.get("weights_sha"):                 # the --weights file the plugin put on this worker
            from distributed import get_worker

            from nst.batch.task import weights_path
            settings = settings.replace(weights=str(weights_path(get_worker().local_directory, video["weights_sha"])))
        content = np.asarray(content, np.float32)
        # the weights prepared once a worker; the init (--init FILE's pixels, a warped frame) video's own
        run_type = functools.partial(Run, keep_weights=True, own_init=True)
        if earlier_outputs:
            pairs, backend = [(b, c) for b, c, _ in flows], flow.resolve(settings.backend)
            run_type = functools.partial(FrameRun, keep_weights=True, own_init=True,
                                         targets=flow.temporal_targets(earlier_outputs, pairs, backend),
                                         temporal_weight=video["temporal_weight"])
            settings = later_settings(settings, video, max(content.shape[:2]),
                                      flow.start_image(earlier_outputs[0], pairs[0], content, backend))
            row["reliable"] = round(float(pairs[0][1].mean()), 4)
            row["flow_seconds"] = round(sum(s for _, _, s in flows), 3)
        job = Job(content, styles, settings, Outputs(progress=False), LOG.info, run_type=run_type)
        run = job.prepare()
        image, status = job.optimise()
        if status:
            raise RuntimeError(job.error)
        row.update(status="done", image=to_uint8(image), terms=run.history[-1] if run.history else {},
                   iterations=len(run.history), evaluations=run.evaluations)
    except Exception as e:  # noqa: BLE001 - bad input or a bug: this frame fails, other shots go on
        row.update(status="failed", error=one_line(e, {}), error_type=type(e).__name__)
    return row


def _worker():
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return None
