"""bench_video.py — `nst video` on a test clip with known motion: the reliability mask against the
true occlusions, flicker with the temporal term against independent frames, seconds per frame.

The clip is made here from our own images (never shipped): a camera panning and zooming across
tubingen.jpg, with shipwreck.jpg (small) sliding across the view — it occludes the town on one
side and disoccludes it on the other. The true backward flow and the true reliability (a pixel of
frame t is seen in frame t−1, inside the view and not hidden by the sprite) follow from the
motion, so the mask OpenCV's flow gives (nst.video.flow) is scored against them, and the flicker

    E = mean_t Σ_x c_t·‖o_t − warp(o_{t−1})‖² / Σ_x c_t        (true flow, true c_t; pixels 0..255)

is measured with the true flow. Frames run in this process through nst.video.task.frame_task,
the function the Dask workers run. "independent": every frame a full run of its own (a shot per
frame); "temporal": the first frame the same run, each later one --later-iterations iterations
from the warped previous output with the temporal term (weight w). The content and style terms
of each frame are read from its run's last iteration (both at the frame's size).

    python bench/bench_video.py --size 128 --frames 6 --weights-sweep 0.3 1 3 10   # choose w
    python bench/bench_video.py --size 256 --frames 6 --write                       # RESULTS.md
    python bench/bench_video.py --size 256 --frames 24 --make-clip clip.mp4          # the clip only
    python bench/bench_video.py --size 256 --frames 24 --make-clip clip.mp4 --sound  # ... with a tone
"""
import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from nst import flow as F  # noqa: E402
from nst.io.image import load_image, resize_longest, to_uint8  # noqa: E402
from nst.run.settings import DEFAULTS, scale_sizes  # noqa: E402
from nst.video.cli import LATER_ITERATIONS, TEMPORAL_WEIGHT  # noqa: E402
from nst.video.task import flows_task, frame_task  # noqa: E402

from shared_images import image  # noqa: E402
BEGIN, END = "<!-- bench_video begin -->", "<!-- bench_video end -->"


# -- the clip ---------------------------------------------------------------------------------------
def make_clip(background, sprite, n, h, w, pan=(6.0, 2.0), zoom=1.012, sprite_step=(-8, 2)):
    # -> (frames [H×W×3 uint8], true back flows [H×W×2] for t ≥ 1, true masks [H×W] for t ≥ 1).
    # Camera: frame t's pixel x sees the world point X = o_t + x / z_t (z_t = zoom^t, o_t moves by
    # `pan` world px per frame); the sprite sits at integer p_t = p_0 + t·sprite_step in the view.
    big = np.asarray(background, np.float64)
    sh, sw = sprite.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    o0 = np.array([(big.shape[1] - w * 1.05) / 2, (big.shape[0] - h * 1.05) / 2])
    p0 = np.array([w - sw // 2, h // 5])
    frames, flows, masks, covers = [], [], [], []
    for t in range(n):
        z, o = zoom ** t, o0 + t * np.array(pan)
        image = F.sample(big, o[0] + gx / z, o[1] + gy / z)
        px, py = p0 + t * np.array(sprite_step)
        cover = (gx >= px) & (gx < px + sw) & (gy >= py) & (gy < py + sh)
        ys, xs = np.nonzero(cover)
        image[ys, xs] = sprite[ys - py, xs - px]
        frames.append(to_uint8(image))
        covers.append((cover, (px, py)))
        if t == 0:
            continue
        zp, op = zoom ** (t - 1), o0 + (t - 1) * np.array(pan)
        bx = (o[0] + gx / z - op[0]) * zp - gx                # background: the same world point at t−1
        by = (o[1] + gy / z - op[1]) * zp - gy
        back = np.stack([np.where(cover, -sprite_step[0], bx), np.where(cover, -sprite_step[1], by)], -1)
        fx, fy = gx + back[..., 0], gy + back[..., 1]
        inside = (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)
        _, (qx, qy) = covers[t - 1]
        hidden = (fx >= qx) & (fx < qx + sw) & (fy >= qy) & (fy < qy + sh)   # under the sprite at t−1
        flows.append(back.astype(np.float32))
        masks.append((inside & (cover | ~hidden)).astype(np.float32))
    return frames, flows, masks


def the_clip(size, n):
    # tubingen as the world (1.6× the view), shipwreck at a third of the view's height as the sprite
    town = load_image(image("tubingen.jpg"))
    h0, w0 = town.shape[:2]
    w, h = (size, round(size * h0 / w0)) if w0 >= h0 else (round(size * w0 / h0), size)
    world = resize_longest(town, round(1.6 * size))
    ship = resize_longest(load_image(image("shipwreck.jpg")), h // 3)
    return make_clip(world, ship, n, h, w)


# -- measurements -----------------------------------------------------------------------------------
def mask_quality(frames, true_flows, true_masks):
    # the estimated mask and flow against the truth, and the flow time per frame pair
    rows, seconds = [], []
    for t in range(1, len(frames)):
        back, c, s = flows_task(frames[t], frames[t - 1])
        seconds.append(s)
        truth = true_masks[t - 1] > 0
        est = c > 0
        epe = np.sqrt(((back - true_flows[t - 1]) ** 2).sum(-1))
        rows.append((est[truth].mean(), truth[est].mean() if est.any() else 1.0, (~est)[~truth].mean()
                     if (~truth).any() else 1.0, np.median(epe[truth]), truth.mean()))
    return np.mean(rows, axis=0), float(np.median(seconds))


def flicker(outputs, true_flows, true_masks):
    errors = []
    for t in range(1, len(outputs)):
        d = np.asarray(outputs[t], np.float64) - F.warp(np.asarray(outputs[t - 1], np.float64), true_flows[t - 1])
        c = true_masks[t - 1]
        errors.append(float((c * (d * d).sum(-1)).sum() / c.sum()))
    return float(np.mean(errors))


def cached(folder, key, make):
    # the results of make() (a list of frame_task results), kept in folder/KEY.pkl when a folder is given
    import pickle
    if not folder:
        return make()
    path = Path(folder) / ("independent-" + "-".join(map(str, key)) + ".pkl")
    if path.exists():
        return pickle.loads(path.read_bytes())
    results = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(results))
    return results


def run_clip(frames, styles, settings, video, first=None):
    # the frames of one shot in order (first: frame 0's result, reused) -> results of frame_task
    results = [first or frame_task(frames[0], styles, settings, video, [], [])]
    for t in range(1, len(frames)):
        offsets = [k for k in ((1, 2, 4) if video["long_term"] else (1,)) if t - k >= 0]
        flows = [flows_task(frames[t], frames[t - k]) for k in offsets]
        earlier = [results[t - k]["image"] for k in offsets]
        results.append(frame_task(frames[t], styles, settings, video, earlier, flows))
        check(results[-1])
    return results


def check(r):
    if r["status"] != "done":
        raise SystemExit(f"a frame failed: {r.get('error')}")


def term_ratios(results, independent):
    # max over the later frames of J_term(temporal) / J_term(independent)
    return {k: max(r["terms"][k] / i["terms"][k] for r, i in zip(results[1:], independent[1:]))
            for k in ("content", "style")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--iterations", type=lambda v: v if v == "auto" else int(v), default=DEFAULTS.iterations,
                    help="iterations per scale of the first and the independent frames (default: nst's, %(default)s)")
    ap.add_argument("--later-iterations", type=int, nargs="+", default=[LATER_ITERATIONS])
    ap.add_argument("--weights-sweep", type=float, nargs="+", default=[TEMPORAL_WEIGHT])
    ap.add_argument("--long-term", action="store_true")
    ap.add_argument("--timing-only", action="store_true", help="no independent run: seconds per frame only")
    ap.add_argument("--write", action="store_true", help="put the tables into bench/RESULTS.md")
    ap.add_argument("--cache", metavar="DIR", help="keep the independent frames' results here and reuse them")
    ap.add_argument("--make-clip", metavar="OUT",
                    help="only write the test clip (a video file, or a folder of PNGs) and stop")
    ap.add_argument("--sound", action="store_true",
                    help="--make-clip's video file with sound: silence, then a 440 Hz tone from 1 s (48 kHz)")
    args = ap.parse_args(argv)
    t0 = time.time()
    frames, true_flows, true_masks = the_clip(args.size, args.frames)
    if args.make_clip:
        return make_clip_file(frames, args.make_clip, args.sound)
    h, w = frames[0].shape[:2]
    styles = [to_uint8(load_image(image("starry_night.jpg")))]
    settings = DEFAULTS.replace(size=args.size, iterations=args.iterations, backend="numba")
    lines = [f"Test clip: {args.frames} frames, {w}×{h}, tubingen.jpg panned (6, 2) world px and zoomed ×1.012 "
             f"per frame, shipwreck.jpg ({h // 3} px) sliding (−8, +2) px per frame; style starry_night.jpg; "
             f"numba backend; first frame (and every independent frame): `--iterations {args.iterations}` per "
             f"scale, scales {' → '.join(map(str, scale_sizes(args.size, None, settings.start_size)))}."]
    (recall, precision, caught, epe, truth), flow_s = mask_quality(frames, true_flows, true_masks)
    lines += ["", "Mask (OpenCV DIS, medium preset) against the true reliability, mean over frame pairs:", "",
              ("| truly reliable pixels | marked reliable (recall) | marked ones truly reliable (precision) | "
               "truly unreliable marked unreliable | median flow error on reliable pixels | "
               "flow pair s (2 flows + mask) |"),
              "|---|---|---|---|---|---|",
              f"| {truth:.3f} | {recall:.3f} | {precision:.3f} | {caught:.3f} | {epe:.2f} px | {flow_s:.3f} |"]
    print("\n".join(lines), flush=True)
    video0 = {"temporal_weight": 0.0, "later_iterations": 1, "long_term": args.long_term}
    first = cached(args.cache, (args.size, 1, args.iterations),
                   lambda: [frame_task(frames[0], styles, settings, video0, [], [])])[0]
    check(first)
    independent = None
    if not args.timing_only:
        independent = cached(args.cache, (args.size, args.frames, args.iterations), lambda: [first] + [
            frame_task(f, styles, settings, video0, [], []) for f in frames[1:]])
        for r in independent:
            check(r)
        e_ind = flicker([r["image"] for r in independent], true_flows, true_masks)
    table = ["", "| w (--temporal-weight) | later iterations | E independent | E temporal | independent / temporal | "
                 "max content ratio | max style ratio | s first frame | s later frame (median) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for later in args.later_iterations:
        for wt in args.weights_sweep:
            video = {**video0, "temporal_weight": wt, "later_iterations": later}
            results = run_clip(frames, styles, settings, video, first)
            later_s = float(np.median([r["seconds"] for r in results[1:]]))
            if independent:
                e = flicker([r["image"] for r in results], true_flows, true_masks)
                ratios = term_ratios(results, independent)
                row = (f"| {wt:g} | {later} | {e_ind:.1f} | {e:.1f} | {e_ind / e:.1f}× | {ratios['content']:.2f} | "
                       f"{ratios['style']:.2f} | {first['seconds']:.1f} | {later_s:.1f} |")
            else:
                row = f"| {wt:g} | {later} | - | - | - | - | - | {first['seconds']:.1f} | {later_s:.1f} |"
            table.append(row)
            print(row, flush=True)
    lines += table
    command = "python bench/bench_video.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines += ["", f"({time.time() - t0:.0f} s in all; `{command}`)"]
    if args.write:
        write(lines, args.size)
    return 0


def make_clip_file(frames, out, sound=False):
    # the test clip as a video (12 fps; with sound: silence, then a tone from 1 s, encoded from a
    # WAV file as nst video encodes sound it cannot copy) or as frame_000.png ... in a folder
    import tempfile

    from nst.io.image import save_image
    from nst.video import clip, writing
    if clip.is_video_path(out):
        seconds = len(frames) / 12.0
        with tempfile.TemporaryDirectory() as tmp:
            source = write_tone(Path(tmp) / "tone.wav", seconds) if sound else None
            writing.write_video(frames, out, 12.0, source, (0.0, seconds))
    else:
        for i, f in enumerate(frames):
            save_image(f, Path(out) / f"frame_{i:03d}.png")
    print(f"wrote {out}: {len(frames)} frames, {frames[0].shape[1]}×{frames[0].shape[0]}"
          + (", with sound (a tone from 1 s)" if sound and clip.is_video_path(out) else ""))
    return 0


def write_tone(path, seconds, rate=48000):
    # -> path: a mono WAV file of `seconds`, silent, then a 440 Hz tone from 1 s (opened as nst
    # video opens its files: ffmpeg_name, so a name with a colon is no protocol's URL)
    import av

    from nst.video.clip import ffmpeg_name
    t = np.arange(round(seconds * rate)) / rate
    tone = np.where(t >= 1.0, 0.3 * np.sin(2 * np.pi * 440 * t), 0.0)
    with av.open(ffmpeg_name(path), "w") as c:
        a = c.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray((tone * 32767).astype(np.int16)[None], format="s16", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        c.mux([*a.encode(frame), *a.encode()])
    return str(path)


def machine():
    try:
        model = next(line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name"))
    except (StopIteration, OSError):
        model = platform.processor()
    return f"{model}, {os.cpu_count()} logical CPUs"


def write(lines, size):
    # replace this size's block inside the bench_video section of RESULTS.md (others kept)
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text(encoding="utf-8")
    head = (f"### {size} px\n\n- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()}; "
            f"load average {os.getloadavg()[0]:.1f} when written (a shared machine: the seconds are wall times)\n\n")
    block = f"<!-- {size} px begin -->\n{head}" + "\n".join(lines) + f"\n<!-- {size} px end -->"
    if BEGIN not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n## Video: temporal consistency (bench/bench_video.py)\n\n{END}\n"
    start, end = text.index(BEGIN), text.index(END)
    section = text[start:end]
    b, e = f"<!-- {size} px begin -->", f"<!-- {size} px end -->"
    section = (section[:section.index(b)] + block + section[section.index(e) + len(e):]) if b in section \
        else section.rstrip() + "\n\n" + block + "\n"
    path.write_text(text[:start] + section + text[end:], encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
