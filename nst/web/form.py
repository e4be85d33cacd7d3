"""`nst serve`'s form: `nst transfer`'s options (nst.options), parsed by the CLI's own argparse
types, so a bad value gets the same one-line message as on the command line."""
import argparse

from nst.cli.options import Parser, add_transfer_options, settings_of
from nst.run.settings import INIT_KEYWORDS, SettingsError
from nst.web.uploads import Refused


class FormParser(Parser):
    def error(self, message):
        raise Refused(400, message)


def form_parser():
    p = FormParser(prog="nst serve", add_help=False)
    add_transfer_options(p)
    return p


def form_options():
    # -> [{name, default, choices, help}] of every transfer option, as `nst transfer --help` has them
    return [{"name": a.option_strings[0][2:], "default": jsonable(a.default), "choices": a.choices,
             "help": help_text(a)} for a in form_parser()._actions if a.option_strings]


def help_text(action):
    default = action.default
    shown = f"{default:g}" if isinstance(default, float) else str(default)
    return (action.help or "").replace("%(default)s", str(default)).replace("%(default)g", shown)


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
    if s.init not in INIT_KEYWORDS:
        raise Refused(400, f"argument --init: the page takes {', '.join(INIT_KEYWORDS)} (an image file only on "
                           "the command line)")
    if s.style_blend is not None and len(s.style_blend) != n_styles:      # as nst.run.job.Job.preflight
        raise Refused(400, f"--style-blend has {len(s.style_blend)} values for {n_styles} style image(s); "
                           "give one per STYLE")
    return s
