"""`nst video --dry-run`'s time: measured on this machine, now, on the run's backend, not modelled.
A worker sets up once (the weights read and prepared, the kernels loaded: its first set-up less a
second at the same side), as it keeps them for all its frames; a frame costs its set-up (the
content and style targets) and its evaluations of J, each timed once at every side the frames run
at (the first frame's scales, the later frames' size) after one untimed evaluation at the first
(kernels loaded, caches warm): five evaluations for the default three scales; L-BFGS takes about
EVALS_PER_ITERATION evaluations an iteration, and one at its start. The frames run one after
another on these cores, the shots' too: a LocalCluster's workers share them.

It was a model, 6.3 s per megapixel per evaluation (one idle machine's), divided by the shots that
run at once: 1.2–1.5× low at 256–512 px on the idle machine of bench/RESULTS.md "Video", 5× at
128 px (a frame's set-up and an evaluation's fixed cost do not shrink with its pixels), as low
again as the machine was loaded, and it counted each worker of a shared machine as a whole one.
Then each shot's first frame was charged the weights' set-up (1–1.7 s of an 11 s first frame at 192 px),
though a worker makes it once for every shot it runs.
"""
import time

EVALS_PER_ITERATION = 1.05    # L-BFGS's Armijo search almost never backtracks (bench/RESULTS.md)


def set_up(run, side):
    # -> (objective, x on the device, seconds): a scale at `side` set up: its images, objective (the
    # weights read and prepared first, unless the run holds them: run.prepared) and start
    start = time.perf_counter()
    content, styles = run.images_at(side)
    objective = run.objective(content, styles)
    x = objective.be.to_device(run.start_image(content, styles, None))
    return objective, x, time.perf_counter() - start


def side_cost(run, side, warm_up=False):
    # -> (seconds to set up a scale at `side`: its images, objective and start; seconds of one
    # evaluation), after an untimed one if warm_up
    objective, x, setup = set_up(run, side)
    if warm_up:
        float(objective.evaluate(x)[0])             # float(): a GPU's work is done
    start = time.perf_counter()
    float(objective.evaluate(x)[0])
    return setup, time.perf_counter() - start


def frame_seconds(caps, costs):
    # iterations at most per scale, [(set-up s, evaluation s)] per scale -> seconds of the frame
    return sum(setup + (EVALS_PER_ITERATION * cap + 1) * each for cap, (setup, each) in zip(caps, costs))


def measure(first, later):
    # the Runs of a shot's first frame and of a later one -> {"worker": s a worker spends once,
    # "first": s, "later": s, "costs": the later frame's (set-up s, evaluation s)}, their sides
    # measured here, now, with the weights the first set-up prepared (a worker's, Run keep_weights)
    cold = set_up(first, first.sizes[0])[2]
    costs = [side_cost(first, side, warm_up=k == 0) for k, side in enumerate(first.sizes)]
    later.prepared = first.prepared
    later_cost = side_cost(later, later.sizes[0])
    return {"worker": max(cold - costs[0][0], 0.0), "first": frame_seconds(first.caps, costs),
            "later": frame_seconds(later.caps, [later_cost]), "costs": later_cost}


def seconds(measured, frames, workers):
    # -> seconds of `frames` (nst.video.plan.Frame) one after another at the measured costs, each of
    # the workers that runs one (up to `workers`) setting up once
    n_first = sum(f.first for f in frames)
    return (min(workers, len(frames)) * measured["worker"] + n_first * measured["first"]
            + (len(frames) - n_first) * measured["later"])
