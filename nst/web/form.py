"""`nst serve`'s form: `nst transfer`'s options (nst.cli.options), parsed by the CLI's own argparse
types, so a bad value gets the same one-line message as on the command line; the uploads read
and checked as they arrive; the run checked as `nst transfer` checks it."""
import argparse
import contextlib

from nst.web import uploads

from nst.cli.options import Parser, add_transfer_options, settings_of
from nst.io.destinations import RunRefused
from nst.library import counted
from nst.run.checks import check_options
from nst.run.settings import DEFAULTS, INIT_KEYWORDS, SettingsError, option_name
from nst.web.uploads import Refused


class FormParser(Parser):
    def error(self, message):
        raise Refused(400, message)


def form_parser():
    p = FormParser(prog="nst serve", add_help=False)
    add_transfer_options(p)
    return p


def form_options():
    # -> [{name, default, choices, help}] of every transfer option, as `nst transfer --help` has them;
    # --init's choices are its keywords (the page has no file of the server's to name)
    return [{"name": a.option_strings[0][2:], "default": jsonable(a.default), "choices": choices_of(a),
             "help": help_text(a)} for a in form_parser()._actions if a.option_strings]


def setting_options():
    # {Settings field: {"option": as the command line spells it, "--style-weight"; "default"}}, in the
    # settings' order: how a gallery card names a run's settings and greys its defaults
    return {field: {"option": option_name(field), "default": default} for field, default in DEFAULTS.as_dict().items()}


def choices_of(action):
    # an option's choices on the page: argparse's, or --init's keywords (a file is for the CLI only)
    return list(INIT_KEYWORDS) if action.dest == "init" else action.choices


def help_text(action):
    # the help as `nst transfer --help` prints it: argparse's own %-expansion (%(default)s, %%)
    return (action.help or "") % {**vars(action), "prog": "nst transfer"}


def jsonable(v):
    return list(v) if isinstance(v, tuple) else v


def settings_from(fields, n_styles, server):
    # {option name: text} -> the run's Settings, refused (400) with the CLI's own messages
    known = {o["name"] for o in form_options()}
    argv = []
    for name, value in fields.items():
        if name not in known:
            raise Refused(400, f"unknown option {name[:40]!r}")
        if value.strip():
            argv += [f"--{name}", value]
    try:
        s = settings_of(form_parser().parse_args(argv, argparse.Namespace(backend=server.backend,
                                                                          weights=server.weights)))
    except SettingsError as e:
        raise Refused(400, str(e)) from None
    if s.init_file:
        raise Refused(400, f"argument --init: the page takes {', '.join(INIT_KEYWORDS)} (an image file only on "
                           "the command line)")
    try:
        check_options(s, n_styles)                  # what needs the number of styles: --style-blend
    except SettingsError as e:
        raise Refused(400, str(e)) from None
    return s


MAX_STYLES = 8
MAX_PARTS = 64
MAX_FIELD_BYTES = 1000


def queue_full(held, limit):
    # -> the refusal (429) of a run while `held` runs, `limit` or more, are queued or running: one
    # message, whether the form's early check (before its uploads are read) or Runs.submit's says it
    return Refused(429, f"the queue is full: {counted(held, 'run')} {'is' if held == 1 else 'are'} queued or "
                        f"running (nst serve --queue {limit}); start this one when one has finished")


async def read_form(request, queued, limit, max_bytes, max_pixels):
    # the multipart form -> ((bytes, suffix, shown name) of the content, [... of each style],
    # {option: text}); files checked as they arrive (nst.web.uploads); queued runs ≥ limit: refused
    if queued >= limit:          # before reading uploads we would refuse
        raise queue_full(queued, limit)
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise Refused(400, "send a multipart form (content, style, options)") from None
    content, styles, fields = None, [], {}
    for _ in range(MAX_PARTS):
        part = await reader.next()
        if part is None:
            break
        if part.name in ("content", "style"):
            shown = (part.filename or part.name)[:80]
            if (part.name == "content" and content) or len(styles) >= MAX_STYLES:
                raise Refused(400, f"one content image and at most {MAX_STYLES} style images")
            data = await uploads.read_limited(part, max_bytes, f"{part.name} {shown!r}")
            suffix = uploads.check_image(data, f"{part.name} {shown!r}", max_pixels)
            if part.name == "content":
                content = (data, suffix, shown)
            else:
                styles.append((data, suffix, shown))
        elif part.filename is None and part.name:
            text = await uploads.read_limited(part, MAX_FIELD_BYTES, f"option {part.name[:40]!r}",
                                              f"an option's value is at most {MAX_FIELD_BYTES} bytes")
            if part.name[:100] in fields:            # which one counts? (the last did, silently)
                raise Refused(400, f"option {part.name[:40]!r} sent twice; send each option once")
            fields[part.name[:100]] = text.decode()
        else:
            raise Refused(400, part_refusal(part.name))
    else:
        raise Refused(400, f"more than {MAX_PARTS} form parts")
    if content is None or not styles:
        raise Refused(400, "send a content image and at least one style image")
    return content, styles, fields


def part_refusal(name):
    # why a form part that is no image and no option is refused: a file under a name other than
    # content/style, an option sent as a file, or a part without a name
    if not name:
        return "a form part without a name"
    if name in {o["name"] for o in form_options()}:
        return f"option {name[:40]!r}: send it as a plain value, not a file"
    return f"unknown field {name[:40]!r}: send the photo as 'content' and each painting as 'style'"


def check_run(content, styles, settings, outdir, backend, shown=None):
    # the run checked as `nst transfer` checks it (sizes, memory) -> its warnings, each once (the
    # Python warnings raised meanwhile, then nst.run.checks.run_warnings': a scope of their own,
    # nst.run.warned, so that each run gets them); Refused names what is wrong, its input files
    # by the names `shown` gives them ({path: "content 'photo.jpg'"}), OUTDIR as OUTDIR
    from nst import memory
    from nst.io.image import ImageError
    from nst.run.checks import check_sizes, run_warnings
    from nst.run.run import Run
    with request_warnings(shown or {}, outdir) as (said, warned):
        try:
            run = Run(str(content), [str(s) for s in styles], settings, lambda m: None)
            check_sizes(run)
            parts, (h, w) = run.memory_estimate()
        except (RunRefused, SettingsError, ImageError) as e:
            raise Refused(400, shown_paths(str(e), shown or {}, outdir)) from None
        need, free = parts["total"] + memory.images_bytes([run.content, *run.styles]), memory.available(backend)
        if need > free:
            raise Refused(413, f"a {w}×{h} run needs about {memory.gib(need)}, {memory.gib(free)} is free: "
                               "choose a smaller size")
        for warning in run_warnings(run, settings.tile):
            said(warning)
    return warned


@contextlib.contextmanager
def request_warnings(shown, outdir):
    # a scope of one request's own (nst.run.warned: each run's check, each comparison, gets the
    # warnings the first got) -> (its Said, the list its warnings are gathered in, each once, each
    # file named as `shown` names it and OUTDIR as OUTDIR: shown_paths)
    from nst.run.warned import warning_scope
    warned = []
    with warning_scope(lambda m: warned.append(shown_paths(m, shown, outdir))) as said:
        yield said, warned


def input_names(files, names):
    # a run's input files [content, style…] and their names (rows.inputs_of) -> {path: "content
    # 'photo.jpg'", path: "style 'painting.jpg'"…}: as the pages name them (shown_paths)
    return {str(files[0]): f"content {names['content']!r}",
            **{str(p): f"style {n!r}" for p, n in zip(files[1:], names["style"])}}


def shown_paths(text, shown, outdir):
    # a message with each input file as the user knows it (`shown`), and OUTDIR for the server's folder
    for path, name in shown.items():
        text = text.replace(str(path), name)
    return text.replace(str(outdir), "OUTDIR")
