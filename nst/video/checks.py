"""`nst video`'s checks before any work: the libraries, the options that need no file read, what
a worker would refuse (the options that must agree, --init, --weights), and the clip's frames
enlarged a lot or a --tile that multiplies the work (said, not refused)."""
from nst.io.destinations import RunRefused
from nst.run.progress import log
from nst.video import plan as plans


def check_libraries():
    # OpenCV and PyAV come with the `video` extra
    try:
        import av  # noqa: F401
        import cv2  # noqa: F401
    except ImportError as e:
        raise RunRefused(f"nst video needs OpenCV and PyAV ({e}): pip install 'nst[video]'") from None


def check_options(args):
    # the options that need no file read, refused before anything else: -o, the cluster's
    # (nst.batch.checks)
    from nst.batch.checks import check_cluster_options
    if not args.output.strip():
        raise RunRefused("-o is empty: give a video file (e.g. -o styled.mp4) or a folder for the frames")
    plans.check_output_name(args.output)
    check_cluster_options(args)


def check_inputs(args, settings, styles):
    # what a worker would refuse, refused here before anything is written: the options that must
    # agree (nst.run.checks), --init a picture nst can read, --weights a VGG19 (nst.batch.checks:
    # read once) -> (the --weights file for the workers or None, the --init FILE's pixels H×W×3
    # float32 or None: decoded here once, they travel with the frames, cli.init_travels)
    from nst.batch import checks
    from nst.io.image import load_image
    from nst.run.checks import check_options, read_init
    check_options(settings, len(styles))
    init = read_init(settings.init, load_image) if settings.init_file else None
    return checks.read_weights(settings.weights, local=not args.scheduler), init


def warn_upscaled(clip, size):
    # a clip's frames enlarged a lot to --size said once, on the client (nst transfer's rule and words:
    # nst.run.checks.upscale_warning): the workers get them already at --size, and see no upscale
    from nst.run.checks import upscale_warning
    upscaled = upscale_warning(clip.src_shape, size) if clip.src_shape else None
    if upscaled:
        log(f"nst video: warning: {clip.source}: {upscaled}")


def warn_tile(run):
    # a --tile whose halos make a frame's evaluations many times an untiled one's work said once, on the
    # client (nst transfer's rule and words: nst.run.checks.tile_warning), for `run`, the first frame's
    # (its last scale is the frames' size, the later frames' one scale); the workers' runs only log it
    from nst.run.checks import tile_warning
    tiled = tile_warning(run, run.settings.tile)
    if tiled:
        log(f"nst video: warning: {tiled}")
