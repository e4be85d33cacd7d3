"""The `nst` command: argparse and dispatch. transfer, demo, weights fetch|info, gradcheck,
batch, compare.

User input is checked where it enters: each option's argparse type (from nst.run.settings' rules)
refuses a bad value in one line; Settings refuses options that disagree; nst.run.job checks the
images, the memory and every path the run writes, all before the first evaluation. Only the
errors user_errors() lists print as one line (exit 2); anything else is a bug and shows its
traceback (`--debug` shows the traceback of every error).
"""
import sys

from nst import batch, compare, gradcheck
from nst.cli.parser import build_parser


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
    return {"transfer": cmd_transfer, "demo": cmd_demo, "weights": cmd_weights, "gradcheck": gradcheck.main,
            "batch": batch.main, "compare": compare.main}[command]


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return handler_of(args.command)(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("\nnst: interrupted", file=sys.stderr)
        return 130
    except user_errors() as e:
        if args.debug:
            raise
        print(f"nst: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
