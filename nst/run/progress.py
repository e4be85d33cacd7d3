"""What a user sees while nst works, on stderr: `log` lines and a one-line progress bar
(iteration, loss terms, s/it and ETA)."""
import sys
import time

from nst.library import counted


def log(msg):
    print(msg, file=sys.stderr)


def fmt_seconds(s):
    s = int(round(s))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def iteration_detail(terms=None, evaluations=None):
    # " (N evals) J total … content … style …" after an optimiser iteration
    evals = "" if evaluations is None else f" ({evaluations} evals)"
    return evals + ("" if terms is None else " J " + " ".join(f"{k} {v:.3g}" for k, v in terms.items()))


class Progress:
    """One line: [####----] done/total UNITs DETAIL | s/UNIT | ETA, repainted in place on a terminal
    (a line per change otherwise). Runs count iterations, nst batch tasks, nst video frames; UNIT
    is singular ("frame": "3/10 frames", "0.19 s/frame"). at_most: the total is a cap the work may
    stop short of (--iterations auto), and the bar says so, as the live page does: "37/at most 114",
    "ETA at most 0m40s"."""

    def __init__(self, total, unit="", stream=None, width=24, at_most=False):
        self.total, self.unit, self.width = total, unit, width
        self.most = "at most " if at_most else ""
        self.stream = stream or sys.stderr
        self.start, self.last = time.perf_counter(), None
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done, detail=""):
        if not self.tty and (done, detail) == self.last:
            return
        self.last = (done, detail)
        rate = (time.perf_counter() - self.start) / done if done else 0.0
        filled = int(self.width * done / max(self.total, 1))
        total = self.most + (counted(self.total, self.unit) if self.unit else str(self.total))
        eta = f"ETA {self.most}{fmt_seconds(rate * (self.total - done))}" if done else "ETA -"
        line = (f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{total}{detail} "
                f"| {rate:.2f} s/{self.unit or 'it'} | {eta}")
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        self.stream.flush()

    def message(self, text):
        # a line of its own, above the progress line
        self.stream.write(("\r\x1b[K" if self.tty else "") + text + "\n")
        self.last = None

    def close(self):
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()
