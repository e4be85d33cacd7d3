"""`nst video --dry-run`'s time: measured on this machine, now, on the run's backend, not modelled.
A frame costs its set-up (the content and style targets; the weights read and prepared: a shot's
first frame only, as a worker keeps them for its next frames) and its
evaluations of J, each timed once at every side the frames run at (the first frame's scales, the
later frames' size) after one untimed evaluation at the first (kernels loaded, caches warm): five
evaluations for the default three scales; L-BFGS takes about
EVALS_PER_ITERATION evaluations an iteration, and one at its start. The frames run one after
another on these cores, the shots' too: a LocalCluster's workers share them.

It was a model, 6.3 s per megapixel per evaluation (one idle machine's), divided by the shots that
run at once: 1.2–1.5× low at 256–512 px on the idle machine of bench/RESULTS.md "Video", 5× at
128 px (a frame's set-up and an evaluation's fixed cost do not shrink with its pixels), as low
again as the machine was loaded, and it counted each worker of a shared machine as a whole one.
"""
import time

EVALS_PER_ITERATION = 1.05    # L-BFGS's Armijo search almost never backtracks (bench/RESULTS.md)


def side_cost(run, side, warm_up=False):
    # -> (seconds to set up a scale at `side`: its images, objective and start; seconds of one
    # evaluation), after an untimed one if warm_up
    start = time.perf_counter()
    content, styles = run.images_at(side)
    objective = run.objective(content, styles)
    x = objective.be.to_device(run.start_image(content, styles, None))
    setup = time.perf_counter() - start
    if warm_up:
        float(objective.evaluate(x)[0])             # float(): a GPU's work is done
    start = time.perf_counter()
    float(objective.evaluate(x)[0])
    return setup, time.perf_counter() - start


def frame_seconds(caps, costs):
    # iterations at most per scale, [(set-up s, evaluation s)] per scale -> seconds of the frame
    return sum(setup + (EVALS_PER_ITERATION * cap + 1) * each for cap, (setup, each) in zip(caps, costs))


def measure(first, later):
    # the Runs of a shot's first frame and of a later one -> {"first": s, "later": s, "costs": the later
    # frame's (set-up s, evaluation s)}, their sides measured here, now
    costs = [side_cost(first, side, warm_up=k == 0) for k, side in enumerate(first.sizes)]
    later.prepared = first.prepared       # a worker prepares the weights once (Run keep_weights)
    later_cost = side_cost(later, later.sizes[0])
    return {"first": frame_seconds(first.caps, costs), "later": frame_seconds(later.caps, [later_cost]),
            "costs": later_cost}


def seconds(measured, frames):
    # -> seconds of `frames` (nst.video.plan.Frame) one after another at the measured costs
    n_first = sum(f.first for f in frames)
    return n_first * measured["first"] + (len(frames) - n_first) * measured["later"]
