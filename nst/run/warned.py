"""Warnings said once a scope. A command is one scope (nst.cli.warnings_as_lines: `nst transfer`
warns once of a file read as content and as style); `nst serve` lives for many runs, so each run's
check is a scope of its own (nst.web.form.check_run), and so is each comparison (nst.web.app): a
second run gets the warnings the first got.

The scope is a ContextVar: a thread (the server's checks run on an executor's threads) or an
asyncio task has its own; a thread in none says its warnings in the command's scope. A task
of nst batch, nst video or nst serve runs in a scope of its own on its worker (task_warnings): its
warnings go back with its result, and the command says them (say_returned), naming the task.
A worker may run several tasks at once, on threads of one process (`dask worker --nthreads N`, N > 1,
dask's default): Python's warnings state (showwarning, the filters) is the process's, so a task
does not swap it for its run and put it back (the first to end would undo the others' for the rest
of their runs): the routing is set once a process (route_to_scopes) and a task's scope hides what
its filters would (NumPy's overflow warnings: Said's quiet).
"""
import contextlib
import contextvars
import re
import threading
import warnings

from nst.optim import OVERFLOW

SCOPE = contextvars.ContextVar("nst_warning_scope", default=None)


class Said:
    """One scope's warnings: each message said once, by say(message), in the order first raised;
    none for which quiet(message) is true (a task's NumPy overflow warnings, as filters would drop
    them)."""

    def __init__(self, say, quiet=None):
        self.say, self.messages, self.quiet = say, [], quiet

    def __call__(self, message):
        if self.quiet and self.quiet(message):
            return
        message = str(message)
        if message not in self.messages:
            self.messages.append(message)
            self.say(message)


@contextlib.contextmanager
def warning_scope(say, quiet=None):
    # a context -> its Said: the Python warnings raised in it (this thread or task), while a command
    # shows them (show_warning), each said once by say(message); call the Said with a warning of
    # one's own (a run's upscale warning) to say it the same way, once
    said = Said(say, quiet)
    token = SCOPE.set(said)
    try:
        yield said
    finally:
        SCOPE.reset(token)


def show_warning(elsewhere):
    # -> warnings.showwarning: each warning to the scope it was raised in, else to
    # elsewhere(message, category, filename, lineno, file, line): a command's own scope, a worker's
    # showwarning as it was
    def show(message, *where, **more):
        said = SCOPE.get()
        if said:
            said(message)
        else:
            elsewhere(message, *where, **more)
    show.routes_to_scopes = True
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
        warnings.showwarning = show_warning(lambda message, *_, **__: said(message))
        yield said


def overflow_warning(message):
    # True for NumPy's overflow, invalid-value and divide-by-zero RuntimeWarnings (nst.optim.OVERFLOW)
    return isinstance(message, RuntimeWarning) and re.match(OVERFLOW, str(message)) is not None


@contextlib.contextmanager
def task_warnings(debug=False, unsaid=()):
    # a context -> its Said: a task's on its worker (nst batch, video, serve), whose messages go back
    # with its result, as `nst transfer` says them (nst.cli.main: NumPy's overflow warnings not said,
    # nst.optim.overflow_unwarned: a run finds non-finite values itself; said under the command's
    # --debug), nor those of the categories `unsaid`. Its thread's scope only: the process's warnings
    # state is left routed, its filters as they were (module doc)
    route_to_scopes()
    quiet = lambda m: isinstance(m, unsaid) or (not debug and overflow_warning(m))     # noqa: E731
    with warning_scope(lambda m: None, quiet) as said:
        yield said


ROUTING = threading.Lock()


def route_to_scopes():
    # this process's Python warnings to the scope of the thread that raised them (a task's), those
    # of a thread in none as they were shown before; "always" where no filter matches, so that the
    # scope decides "once" (warnings_said). Set for good, again only where something has put back
    # another showwarning since
    with ROUTING:
        warnings.simplefilter("always", append=True)
        if not getattr(warnings.showwarning, "routes_to_scopes", False):
            warnings.showwarning = show_warning(warnings.showwarning)


def say_returned(message):
    # a warning that came back with a task's result, said in the scope of the thread that got it,
    # once, as that scope's own are; in none (--debug, the API) as a Python warning
    said = SCOPE.get()
    if said:
        said(message)
    else:
        warnings.warn(message, stacklevel=2)
