"""`nst gradcheck`: the options and the printed table of nst.gradcheck's checks (the maths is there)."""
import sys
import time

from nst.backends import NAMES
from nst.cli.options import integer
from nst.gradcheck import gradcheck_table

BACKEND_CHOICES = (*NAMES, "all")


def format_table(rows):
    # -> the aligned text table, one line per row, skip notes below it
    head = ("backend", "check", "shape", "error", "threshold", "result")
    body = [(r.backend, r.op, r.shape, "-" if r.status == "SKIP" else f"{r.error:.2e}",
             "-" if r.status == "SKIP" else f"{r.threshold:.0e}", r.status) for r in rows]
    width = [max(len(line[k]) for line in [head, *body]) for k in range(len(head))]
    right = {3, 4}

    def fmt(line):
        return "  ".join(s.rjust(n) if k in right else s.ljust(n) for k, (s, n) in enumerate(zip(line, width))).rstrip()
    lines = [fmt(head), fmt(tuple("-" * n for n in width))] + [fmt(line) for line in body]
    lines += [f"note: {r.backend} {r.op}: {r.note}" if r.status != "SKIP" else f"note: {r.backend}: {r.note}"
              for r in rows if r.note]
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument("--seed", type=integer(0, 2**32 - 1), default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--backend", default="numpy", choices=BACKEND_CHOICES,
                        help="numpy (default): finite differences of the reference; numba, cupy, "
                             "cuda-cpu: that backend's kernels against the reference; all: every one")
    return parser


def main(args) -> int:
    # print the table; 0 if every row passes (with --backend all, a skipped backend is not a
    # failure), else 1; a backend asked for by name that cannot run: its reason, one line, 2
    backends = NAMES if args.backend == "all" else (args.backend,)
    t0 = time.perf_counter()
    rows = gradcheck_table(seed=args.seed, backends=backends)
    if args.backend != "all" and all(r.status == "SKIP" for r in rows):
        print(f"nst: error: --backend {args.backend}: {rows[0].note}", file=sys.stderr)
        return 2
    print("error = max|analytic − numeric| / max|numeric|  (central differences, float64)"
          if backends == ("numpy",) else
          "error = max|got − reference| / max|reference|  (numpy rows: central differences, float64; "
          "backend rows: float32 kernels vs the float64 reference)")
    print(format_table(rows))
    failed = [r for r in rows if not r.passed]
    checked = sum(r.status != "SKIP" for r in rows)
    print(f"{checked - len(failed)}/{checked} checks passed in {time.perf_counter() - t0:.1f} s"
          + (f"; FAILED: {', '.join(r.op for r in failed)}" if failed else ""))
    return 1 if failed else 0
