"""What a user sees while nst works, on stderr: `log` lines and a one-line progress bar
(iteration, loss terms, s/it and ETA)."""
import sys
import time


def log(msg):
    print(msg, file=sys.stderr)


def fmt_seconds(s):
    s = int(round(s))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    def __init__(self, total, stream=None, width=24):
        self.total, self.width = total, width
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done, terms=None, evaluations=None):
        elapsed = time.perf_counter() - self.start
        rate = elapsed / done if done else 0.0
        filled = int(self.width * done / max(self.total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        losses = "" if terms is None else " J " + " ".join(f"{k} {v:.3g}" for k, v in terms.items())
        evals = "" if evaluations is None else f" ({evaluations} evals)"
        line = (f"[{bar}] {done}/{self.total}{evals}{losses} | {rate:.2f} s/it "
                f"| ETA {fmt_seconds(rate * (self.total - done))}")
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()
