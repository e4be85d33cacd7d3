"""`nst video` on the Dask engine of `nst batch`: within a shot the frames run one after another
(each needs the previous output), the shots side by side; each shot's flows are asked for
FLOWS_AHEAD frames ahead of it (all at once held 1.8 MB a frame pair at 512×288, 3× with
--long-term, for the whole clip). The client alone writes OUTDIR: each frame as it ends, its
manifest row first."""
import contextlib

import numpy as np

from nst.run.progress import Progress
from nst.batch.engine import WriteFailed, cannot_write, stop_if_outdir_refuses
from nst.video import plan as plans

FLOWS_AHEAD = 3                 # frames of a shot whose flows are computed before they are needed


def keep(manifest, frame, result, image, outdir):
    # a frame's manifest row, then its picture (the row first: the file is ours; save_image is
    # atomic) -> the frame's status: "failed" when its picture alone was refused (its row says why),
    # WriteFailed when OUTDIR takes no more (nst.batch.engine's rule, as nst batch's pictures) or
    # its manifest cannot be appended to (a frame without its row would be made again)
    from nst.io.image import ImageError, save_image
    path = outdir / frame.output
    append(manifest, plans.row_of(frame, result))
    try:
        if image is not None:
            save_image(image, path, warn_scale=False)
    except (OSError, ImageError) as e:          # ImageError: a file of the user's put there meanwhile
        result.update(status="failed", error=cannot_write(path, e))
        append(manifest, plans.row_of(frame, result))
        stop_if_outdir_refuses(path, e)
    return result["status"]


def append(manifest, row):
    # a row of OUTDIR's manifest; an OSError -> WriteFailed (the run stops)
    try:
        manifest.append(row)
    except OSError as e:
        raise WriteFailed(manifest.path, e) from None


def on_cluster(client, clip, frames, todo, settings, video, styles, manifest, outdir):
    # each shot's next frame submitted when its previous one is back, its flows FLOWS_AHEAD frames
    # ahead -> counts
    from distributed import wait
    from distributed.client import FuturesCancelledError

    from nst.batch import engine
    from nst.run.warned import say_returned
    from nst.io.image import load_image, to_uint8
    from nst.video.task import flows_task, frame_task
    by_pos = {f.position: f for f in frames}
    run_here = {f.position for f in todo}
    outputs = {}                                          # position -> output uint8 (earlier frames needed)
    for f in todo:
        for e in f.earlier:
            if e not in outputs and e not in run_here:
                outputs[e] = np.asarray(load_image(outdir / by_pos[e].output), np.uint8)
    # frames and styles travel inside the tasks (not scattered): a worker that dies loses nothing
    # the scheduler cannot make again
    frames_of, flows = clip.frames, {}

    def ask_flows(q):
        # the flows of the queue's next FLOWS_AHEAD frames, those not asked for yet
        for f in q[:FLOWS_AHEAD]:
            for e in f.earlier:
                if (f.position, e) not in flows:
                    flows[f.position, e] = client.submit(flows_task, frames_of[f.position], frames_of[e],
                                                         settings.backend, pure=False)
    style_images = [to_uint8(load_image(s)) for s in styles]
    queues = [[f for f in shot if f.position in run_here] for shot in plans.shots_of(frames)]
    queues = [q for q in queues if q]
    for q in queues:
        ask_flows(q)
    flying, counts = {}, {"done": 0, "failed": 0}
    progress = Progress(len(todo), unit="frame")
    try:
        while queues or flying:
            for q in list(queues):
                if any(flying[k] is q for k in flying):
                    continue
                f = q[0]
                fut = client.submit(frame_task, frames_of[f.position], style_images, settings, video,
                                    [outputs[e] for e in f.earlier], [flows[f.position, e] for e in f.earlier],
                                    pure=False, priority=10)
                flying[fut] = q
            with contextlib.suppress(TimeoutError, FuturesCancelledError):
                wait(list(flying), timeout=1.0, return_when="FIRST_COMPLETED")
            for fut in [k for k in flying if k.done()]:
                q = flying.pop(fut)
                f = q.pop(0)
                result = engine.outcome(fut)
                image = result.pop("image", None)
                for warning in result.get("warnings", []):      # a clip's frames raise the same: once a command
                    say_returned(warning)
                if keep(manifest, f, result, image if result["status"] == "done" else None, outdir) == "done":
                    outputs[f.position] = image
                    counts["done"] += 1
                else:
                    counts["failed"] += 1
                    progress.message(f"nst video: frame {f.number} failed: {result['error']}; its shot stops")
                    q.clear()
                drop_unneeded(outputs, flows, queues)
                ask_flows(q)
                if not q:
                    queues = [x for x in queues if x is not q]
                fut.release()
            progress.update(counts["done"] + counts["failed"],
                            engine.task_detail(counts["done"], counts["failed"], len(flying)))
    except (KeyboardInterrupt, WriteFailed):
        client.cancel(list(flying))
        raise
    finally:
        progress.close()
    return counts


def drop_unneeded(outputs, flows, queues):
    # outputs {position: image} less those no queued frame takes as an earlier one; flows
    # {(position, earlier): future} less (released) those of frames no longer queued
    queued = [f for q in queues for f in q]
    needed, pending = {e for f in queued for e in f.earlier}, {f.position for f in queued}
    for position in [p for p in outputs if p not in needed]:
        del outputs[position]
    for key in [k for k in flows if k[0] not in pending]:
        flows.pop(key).release()
