"""The `nst` command: argparse and dispatch. transfer, demo, weights fetch|info, gradcheck,
batch, video, compare, serve.

User input is checked where it enters: each option's argparse type (from nst.run.settings' rules)
refuses a bad value in one line; Settings refuses options that disagree; nst.run.job checks the
images, the memory and every path the run writes, all before the first evaluation. Only the
errors user_errors() lists print as one line (exit 2); anything else is a bug and shows its
traceback (`--debug` shows the traceback of every error, and keeps its exit status). nst's own
warnings (an animation read as its first frame, auto's self-check falling back) print as one
"nst: warning:" line each ("nst batch: warning:", "nst video: warning:" for theirs), as the runs'
own warnings do (`--debug`: Python's form, file and line).
"""
import contextlib
import sys

from nst import batch, compare, video
from nst.cli import gradcheck
from nst.cli.parser import build_parser
from nst.run.warned import warnings_said
from nst.optim import overflow_unwarned


def user_errors():
    # the errors that are the user's input or environment, printed as one line
    from nst.backends import BackendUnavailable
    from nst.io.assets import AssetError
    from nst.io.checkpoint import CheckpointError
    from nst.io.destinations import RunRefused
    from nst.io.image import ImageError
    from nst.run.settings import SettingsError
    from nst.weights import WeightsError
    from nst.weights.torch_legacy import TorchFileError
    return (RunRefused, SettingsError, ImageError, AssetError, BackendUnavailable, WeightsError,
            TorchFileError, CheckpointError, MemoryError)


def handler_of(command):
    from nst.cli.transfer import cmd_demo, cmd_transfer
    from nst.cli.weights import cmd_weights
    from nst.web import serve
    return {"transfer": cmd_transfer, "demo": cmd_demo, "weights": cmd_weights, "gradcheck": gradcheck.main,
            "batch": batch.main, "video": video.main, "compare": cmd_compare,
            "serve": serve.main}[command]


def cmd_compare(args):
    # `nst compare`: its default --backend auto means what it means for `nst transfer` (nst.run.selfcheck)
    from nst.run.selfcheck import choose_backend
    args.backend = choose_backend(args.backend).name
    return compare.main(args)


def main(argv=None):
    lines_in_order()
    args = build_parser().parse_args(argv)
    try:
        quiet_overflow = contextlib.nullcontext() if args.debug else overflow_unwarned()
        with quiet_overflow, warnings_as_lines(args.command, args.debug):
            status = handler_of(args.command)(args)
        sys.stdout.flush()                    # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        return quiet_broken_pipe()
    except KeyboardInterrupt:
        show_traceback(args.debug)
        print("\nnst: interrupted", file=sys.stderr)
        return 130
    except user_errors() as e:
        show_traceback(args.debug)
        print(f"nst: error: {str(e) or ('out of memory' if isinstance(e, MemoryError) else type(e).__name__)}",
              file=sys.stderr)
        return 2


def lines_in_order():
    # stdout written out a line at a time, as stderr is: 2>&1 into a pipe or file gets the lines in the
    # order written (a block-buffered stdout came out at exit: a dry run's memory table after the
    # refusal it explains)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)


@contextlib.contextmanager
def warnings_as_lines(command, debug):
    # a context: each Python warning shown as one "nst: warning: MESSAGE" line on stderr ("nst
    # batch: warning:" and "nst video: warning:", as those commands word their own; not debug), each
    # message once a command (a file read twice, as content and style, is warned of once: the
    # registry Python's filters keep for that is cleared wherever a block catches warnings), or once
    # a scope of its own (nst.run.warned: each run of nst serve; each task on its worker, said here
    # naming the task: "nst batch: warning: OUTPUT: MESSAGE"); which warnings are shown (the filters)
    # is Python's as before
    if debug:
        yield
        return
    who = f"nst {command}" if command in ("batch", "video") else "nst"
    with warnings_said(lambda m: print(f"{line_start()}{who}: warning: {m}", file=sys.stderr)):
        yield


def line_start():
    # what a line on stderr starts with: on a terminal, the line cleared first, where a progress bar
    # may be painted (nst.run.progress; nst batch's tasks' warnings come as the bar runs)
    return "\r\x1b[K" if sys.stderr.isatty() else ""


def show_traceback(debug):
    # --debug: the traceback of the error being handled, above its one line (the exit status stays)
    if debug:
        import traceback
        traceback.print_exc()


def quiet_broken_pipe():
    # stdout's reader went away (`nst weights info | head -3`): stop quietly, as `cat` does;
    # stdout goes to /dev/null so that Python's flush at exit raises nothing either
    import os
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141                                # 128 + SIGPIPE, what a shell reports for `yes | head`


if __name__ == "__main__":
    sys.exit(main())
