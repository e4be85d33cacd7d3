"""One live run per OUTDIR: a second `nst video`, `nst batch` or `nst serve` on a folder a live one
of the same command writes is refused at its start (their pictures and manifest rows interleaved).

The hold is a socket bound to a name of the tool and OUTDIR's real path in Linux's abstract
namespace: no file, so the name goes with the process however it ends (kill -9 included). A process
forked from the holder (a worker) closes its copy at once: only the command's own process holds,
and a worker that outlives it keeps nothing held. Where the system has no such names, nothing is held.
"""
import contextlib
import errno
import hashlib
import os
import socket
import weakref

from nst.io.destinations import RunRefused

HELD = weakref.WeakSet()                 # this process's holds: a forked child closes its copies


def close_held_in_child():
    for held in list(HELD):
        held.close()


os.register_at_fork(after_in_child=close_held_in_child)


def hold_outdir(tool, option, given, outdir):
    # -> a context holding OUTDIR for `tool` ("nst video") while this process lives; RunRefused
    # naming `option` as typed (`given`) if a live one holds it
    name = f"\0{tool.replace(' ', '-')}-" + hashlib.sha256(os.path.realpath(outdir).encode()).hexdigest()[:32]
    held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        held.bind(name)
    except OSError as e:
        held.close()
        if e.errno == errno.EADDRINUSE:
            raise RunRefused(f"{option} {given}: another {tool} is writing {outdir} now; wait for it to end, or "
                             f"choose another {option}") from None
        return contextlib.nullcontext()
    HELD.add(held)
    return held
