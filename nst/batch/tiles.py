"""One picture's tiles on a Dask cluster: `nst transfer --tile N --scheduler ADDRESS`.

A tiled evaluation (nst.tiled, docs/maths.md "Tiled evaluation") is two passes over the tiles, and
within a pass the tiles are independent: pass 1 sums each tile's Gram matrices, pass 2 runs each
tile's backward with the picture's Ĝ(X) − Ĝ(S). Here each tile of each pass is one task on the
cluster, and so is each tile's share of the content targets a^l(C) (once a scale). The weights go
to every worker once a run, and each worker prepares them once (worker_net). A task carries its
tile's extent pixels (and, in pass 2, the Gram differences, sent once an evaluation, and its
interior's content targets, sent once a scale) and returns its Gram sums or its gradient over the
extent. The client keeps what is picture-sized (the image, ∂J/∂X, the optimiser, a^l(C)) and adds
the tiles' results in the local order, so the numbers are a local tiled evaluation's to float32
rounding; each worker holds one tile's activations. Scales that run whole
(nst.run.run.Run.scale_tile) stay on the client.
"""
import contextlib
import functools
import uuid
from dataclasses import dataclass

import numpy as np

from nst.backends import get_backend
from nst.backends.backend import to_host
from nst.objective import EvaluationFailed, keep_prepared, kept_prepared, prepare
from nst.run.warned import say_returned, task_warnings
from nst.tiled import TiledObjective, content_interior, tile_gradient, tile_grams


@dataclass(frozen=True)
class NetSpec:
    """What a task needs besides the weights to run tile_grams / tile_gradient."""
    key: str                         # the run's: a worker keeps the weights it prepared for the latest key
    backend: str
    dtype: str
    pooling: str
    deepest: str
    content_layers: tuple
    style_layers: tuple
    lam: tuple                       # the scale's λ_l (they change with the scale: auto weights)
    alpha: float
    beta: float


@dataclass
class TileNet:
    """The attributes of an Objective that nst.tiled's per-tile functions read, on a worker."""
    be: object
    params: dict
    dtype: object
    pooling: str
    deepest: str
    content_layers: list
    style_layers: list
    lam: list
    alpha: float
    beta: float


def worker_net(spec, weights):
    # the task's TileNet; the weights are prepared once a run on each worker (the latest run's kept)
    k = ("tiles", spec.key, spec.backend, spec.dtype)
    held = kept_prepared(k)
    if held is None:
        be = get_backend(spec.backend)
        held = keep_prepared(k, (be, prepare(be, weights, np.dtype(spec.dtype))))
    be, params = held
    return TileNet(be, params, np.dtype(spec.dtype), spec.pooling, spec.deepest, list(spec.content_layers),
                   list(spec.style_layers), list(spec.lam), spec.alpha, spec.beta)


def warnings_back(task):
    # a tile task whose Python warnings come back with its result (nst.run.warned.task_warnings: NumPy's
    # overflow ones not said, as nst transfer says none, but under its --debug; `result` says the rest)
    # -> (result, [message])
    @functools.wraps(task)
    def with_warnings(*args, debug=False):
        with task_warnings(debug) as said:
            value = task(*args)
        return value, said.messages
    return with_warnings


@warnings_back
def content_task(spec, weights, t, pixels, layers):
    # the content targets at one tile's interior, on a worker -> {layer: a^l(C)} on the host
    return {n: to_host(a) for n, a in content_interior(worker_net(spec, weights), t, pixels, layers).items()}


@warnings_back
def grams_task(spec, weights, t, pixels, layers):
    # pass 1 of one tile, on a worker -> ({layer: F_t F_tᵀ} float64 on the host, {layer: N})
    net = worker_net(spec, weights)
    sums, counts, _ = tile_grams(net, t, pixels, layers)
    return {n: to_host(s) for n, s in sums.items()}, counts


@warnings_back
def gradient_task(spec, weights, t, pixels, diffs, counts, targets):
    # pass 2 of one tile, on a worker -> (∂J/∂X over its extent on the host, or None; {k: J_c})
    net = worker_net(spec, weights)
    up = {n: net.be.to_device(a) for n, a in diffs.items()}
    g, js = tile_gradient(net, t, pixels, None, up, counts, {n: net.be.to_device(a) for n, a in targets.items()})
    return (None if g is None else to_host(g)), {k: float(j) for k, j in js.items()}


class ClusterTiles:
    """A run's link to the cluster: the client and the weights, sent to every worker once; debug:
    the tasks' NumPy overflow warnings said (nst transfer --debug)."""

    def __init__(self, client, weights, debug=False):
        self.client, self.key, self.debug = client, uuid.uuid4().hex, debug
        self.weights = send(client, weights, broadcast=True)

    def objective(self, content, style, **kw):
        # Run.objective's constructor for a tiled scale (Run.tiled_objective)
        return ClusterTiledObjective(content, style, cluster=self, **kw)


class ClusterTiledObjective(TiledObjective):
    """TiledObjective whose passes run each tile as a task on the cluster (module doc)."""

    def __init__(self, content, style, *, cluster, **kw):
        self.cluster, self.target_futures = cluster, {}
        super().__init__(content, style, **kw)

    def spec(self):
        return NetSpec(self.cluster.key, self.be.name, np.dtype(self.dtype).name, self.pooling, self.deepest,
                       tuple(self.content_layers), tuple(self.style_layers),
                       tuple(self.lam or ()), self.alpha, self.beta)

    def content_interiors(self, content, tiles):
        c, spec = self.cluster, self.spec()
        futures = [c.client.submit(content_task, spec, c.weights, t, to_host(t.extent(content)),
                                   tuple(self.content_layers), debug=c.debug, pure=False) for t in tiles]
        for t, f in zip(tiles, futures):
            yield t, {n: self.be.to_device(a) for n, a in result(f).items()}

    def pass1(self, image, tiles, layers):
        c, spec = self.cluster, self.spec()
        futures = [c.client.submit(grams_task, spec, c.weights, t, to_host(t.extent(image)), tuple(layers),
                                   debug=c.debug, pure=False) for t in tiles]
        sums, counts = {}, {}
        for s, n in self.results(futures):
            for k in s:
                sums[k] = self.be.to_device(s[k]) + (sums[k] if k in sums else 0)
                counts[k] = counts.get(k, 0) + n[k]
        return sums, counts, None

    def pass2(self, image, tiles, diffs, counts, kept):
        c, spec = self.cluster, self.spec()
        sent = send(c.client, {n: to_host(d) for n, d in diffs.items()})
        order = list(reversed(tiles))
        futures = [c.client.submit(gradient_task, spec, c.weights, t, to_host(t.extent(image)), sent, counts,
                                   self.targets_on_cluster(t), debug=c.debug, pure=False) for t in order]
        for t, (g, js) in zip(order, self.results(futures)):
            yield t, (None if g is None else self.be.to_device(g)), js

    def results(self, futures):
        # each tile's result in turn, a Run's stop check (before_tile) before each, as the local
        # passes: a stop (or a failure) cancels the tiles not yet collected on the cluster
        try:
            for f in futures:
                self.before_tile()
                yield result(f)
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.cluster.client.cancel(pending)

    def targets_on_cluster(self, t):
        # the tile's content targets {layer: a^l(C) at its interior}, sent once a scale: a future
        if t not in self.target_futures:
            local = {n: to_host(a) for n, a in self.tile_targets(t).items()}
            self.target_futures[t] = send(self.cluster.client, local)
        return self.target_futures[t]


def send(client, value, broadcast=False):
    # one future holding `value` whole (a dict given to scatter would become a future per key,
    # under its own keys: the weights' and the Gram differences' layer names would collide)
    return client.scatter([value], broadcast=broadcast, hash=False)[0]


def result(future):
    # a task's result, released on the cluster once here, its warnings said (once a command: the
    # command's scope, say_returned); a worker's error or death ends the evaluation with one line
    try:
        value, warned = future.result()
        future.release()
    except Exception as e:                  # the task raised, its worker died too often, or the scheduler left
        raise EvaluationFailed(f"a tile's evaluation failed on the Dask cluster ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else 'no message'})") from None
    for message in warned:
        say_returned(message)
    return value


def check_scheduler(address, tile):
    # `nst transfer --scheduler ADDRESS`: only for a tiled run (--tile N), the address checked
    # before any work (nst.batch.scheduler) -> the address for Dask
    from nst.io.destinations import RunRefused
    from .scheduler import check_address
    if not (isinstance(tile, int) and tile > 0):
        raise RunRefused("--scheduler evaluates a tiled picture's tiles on a Dask cluster: give --tile N "
                         "too (the tiles' interior side in pixels)")
    return check_address(address)


@contextlib.contextmanager
def cluster_tiles(address, run, log, debug=False):
    # a connection to the scheduler for `run`'s tiled scales (nothing when address is None); debug:
    # its tasks' NumPy overflow warnings said, as nst transfer --debug says its own
    if address is None:
        yield None
        return
    from .engine import cluster_layout, connect
    with connect(address) as client:
        log(f"nst: tiles on {cluster_layout(client, 0).where.splitlines()[0]}")
        tiles = ClusterTiles(client, run.loaded_weights(), debug)   # the weights the run read: read once
        run.tiled_objective = tiles.objective
        try:
            yield tiles
        finally:
            run.tiled_objective = None
