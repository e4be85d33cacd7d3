"""Warnings said once a scope. A command is one scope (nst.cli.warnings_as_lines: `nst transfer`
warns once of a file read as content and as style); `nst serve` lives for many runs, so each run's
check is a scope of its own (nst.web.form.check_run), and so is each comparison (nst.web.app): a
second run gets the warnings the first got.

The scope is a ContextVar: a thread (the server's checks run on an executor's threads) or an
asyncio task has its own; a thread in none says its warnings in the command's scope. A task
of nst batch, nst video or nst serve runs in a scope of its own on its worker (task_warnings): its
warnings go back with its result, and the command says them (say_returned), naming the task.
"""
import contextlib
import contextvars
import warnings

from nst.optim import overflow_unwarned

SCOPE = contextvars.ContextVar("nst_warning_scope", default=None)


class Said:
    """One scope's warnings: each message said once, by say(message), in the order first raised."""

    def __init__(self, say):
        self.say, self.messages = say, []

    def __call__(self, message):
        message = str(message)
        if message not in self.messages:
            self.messages.append(message)
            self.say(message)


@contextlib.contextmanager
def warning_scope(say):
    # a context -> its Said: the Python warnings raised in it (this thread or task), while a command
    # shows them (show_warning), each said once by say(message); call the Said with a warning of
    # one's own (a run's upscale warning) to say it the same way, once
    said = Said(say)
    token = SCOPE.set(said)
    try:
        yield said
    finally:
        SCOPE.reset(token)


def show_warning(command_scope):
    # -> warnings.showwarning for a command: each warning to the scope it was raised in, else to
    # the command's own
    def show(message, *_, **__):
        (SCOPE.get() or command_scope)(message)
    return show


@contextlib.contextmanager
def warnings_said(say):
    # a context -> its Said: each Python warning raised in it (this thread or task; another thread
    # in no scope) said once by say(message), in place of Python's lines. Which are shown is Python's
    # filters' choice, but for their default action's registry (once a code location, for the whole
    # process): "always" where no filter matches, so that the scope, not the first run or task to
    # raise it, decides "once". A command's (nst.cli.warnings_as_lines); a task's on its worker (task_warnings)
    with warnings.catch_warnings(), warning_scope(say) as said:
        warnings.simplefilter("always", append=True)
        warnings.showwarning = show_warning(said)
        yield said


@contextlib.contextmanager
def task_warnings(debug=False):
    # a context -> its Said: a task's on its worker (nst batch, video, serve), whose messages go back
    # with its result, under the filters `nst transfer` runs with (nst.cli.main: NumPy's overflow
    # warnings not said, nst.optim.overflow_unwarned: a run finds non-finite values itself; said
    # under the command's --debug)
    with warnings_said(lambda m: None) as said, contextlib.nullcontext() if debug else overflow_unwarned():
        yield said


def say_returned(message):
    # a warning that came back with a task's result, said in the scope of the thread that got it,
    # once, as that scope's own are; in none (--debug, the API) as a Python warning
    said = SCOPE.get()
    if said:
        said(message)
    else:
        warnings.warn(message, stacklevel=2)
