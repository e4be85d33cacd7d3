"""`nst transfer` and `nst demo`: a command line -> Settings and Outputs -> one Job (nst.run.job)."""
from nst.cli.options import outputs_of, settings_of
from nst.run.job import Job
from nst.run.progress import log


def cmd_transfer(args):
    check_output_name(args.output)
    outputs = outputs_of(args)
    job = Job(args.content, args.style, settings_of(args), outputs, log)
    job.preflight()
    job.prepare()
    return 0 if args.dry_run else job.execute()


def check_output_name(output):
    # -o '' says so (as a Path it would be ".", "unknown image suffix")
    if not output.strip():
        from nst.io.destinations import RunRefused
        raise RunRefused("-o is empty: give the output's file name, e.g. -o out.png")


def cmd_demo(args):
    # the demo images (fetched once), then `nst transfer` on them with the demo's options
    from nst.cli.parser import build_parser
    from nst.cli.demo import OPTIONS, demo_images
    from nst.io.assets import AssetError, cache_dir
    try:
        paths = demo_images(log)
    except OSError as e:                                 # the cache folder cannot be written
        raise AssetError(f"cannot write the demo images under {cache_dir()} ({e.strerror}); "
                         "set NST_HOME to a folder you can write") from None
    log(f"nst: demo: {paths['content'].name} in the style of {paths['style'].name}, {' '.join(OPTIONS)}")
    argv = ["transfer", str(paths["content"]), str(paths["style"]), "-o", args.output,
            "--backend", args.backend, *OPTIONS] + (["--weights", args.weights] if args.weights else [])
    return cmd_transfer(build_parser().parse_args(argv))
