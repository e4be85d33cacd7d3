"""`--scheduler ADDRESS` checked in a few seconds, before Dask is asked to connect.

Dask's Client waits its whole timeout on a host that does not resolve or a port that refuses,
hangs on a server that is not a Dask scheduler (a web server, the dashboard's port), and reads an
answer in another protocol as a message length ("Unable to allocate 3.07 EiB"). So nst checks the
address itself: the scheme, the host and the port as written; the name resolves; the port takes a
TCP connection; and, for tcp://, the first bytes the server sends are a Dask handshake (a Dask
scheduler sends one at once: an 8-byte length, then a frame count and the frames' lengths that add
up to it). Each failure is one RunRefused line naming the address and what is wrong.
"""
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

from nst.io.destinations import RunRefused
from nst.library import counted

SCHEMES = ("tcp", "tls", "ws", "wss")   # Dask's comms that run over TCP
DEFAULT_PORT = 8786                      # Dask's scheduler port
WAIT = 3.0                               # seconds for each of: the name lookup, the connection, the handshake
MAX_HANDSHAKE = 2**20                    # a Dask handshake is a few dozen bytes


def check_address(address, wait=WAIT):
    # -> the address for Dask (tcp://host:port); RunRefused, within a few × wait seconds, otherwise
    text = address.strip()
    if not text:
        raise RunRefused("--scheduler '': give the scheduler's address, e.g. tcp://HOST:8786 "
                         "(without --scheduler nst starts a local cluster)")
    scheme, host, port = split_address(text)
    ip = resolve(text, host, port, wait)
    with connect(text, ip, port, wait) as sock:
        if scheme == "tcp":
            check_handshake(text, sock, wait)
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def split_address(text):
    # "tcp://host:8786", "host:8786", "host" -> (scheme, host, port); the scheme and port checked
    scheme, sep, _ = text.partition("://")
    scheme = scheme.lower() if sep else "tcp"
    if scheme not in SCHEMES:
        hint = " (a web address, e.g. the dashboard's: the scheduler's is tcp://HOST:8786)" \
            if scheme in ("http", "https") else ""
        raise RunRefused(f"--scheduler {text}: unknown scheme {scheme}://{hint}; use one of "
                         f"{', '.join(s + '://' for s in SCHEMES)}")
    parts = urlsplit(text if sep else f"tcp://{text}")
    try:
        port = parts.port
    except ValueError:
        raise RunRefused(f"--scheduler {text}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise RunRefused(f"--scheduler {text}: no host name; e.g. tcp://HOST:8786")
    if port == 0:
        raise RunRefused(f"--scheduler {text}: port 0 is no port a scheduler listens on; use 1 to 65535")
    return scheme, parts.hostname, port or DEFAULT_PORT


def within(seconds, fn):
    # fn() in a daemon thread -> (finished, its value or exception): a lookup that hangs is left behind
    box = {}
    def call():
        try:
            box["value"] = fn()
        except Exception as e:          # noqa: BLE001 - handed back to the caller
            box["error"] = e
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), box.get("error", box.get("value"))


def resolve(text, host, port, wait):
    # the host's first address; a name that does not resolve (or not in time) is refused
    finished, result = within(wait, lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    if not finished:
        raise RunRefused(f"--scheduler {text}: looking up the host {host} took over {wait:g} s; check the name")
    if isinstance(result, Exception):
        raise RunRefused(f"--scheduler {text}: unknown host {host} ({getattr(result, 'strerror', None) or result})")
    return result[0][4][0]


def connect(text, ip, port, wait):
    # an open TCP connection to ip:port, or RunRefused saying why not
    try:
        return socket.create_connection((ip, port), timeout=wait)
    except ConnectionRefusedError:
        raise RunRefused(f"--scheduler {text}: nothing listens on port {port} there (connection refused); "
                         "is the scheduler running?") from None
    except (socket.timeout, TimeoutError):
        raise RunRefused(f"--scheduler {text}: no answer in {wait:g} s (a firewall, or the wrong host?)") from None
    except OSError as e:
        raise RunRefused(f"--scheduler {text}: cannot connect ({e.strerror or e})") from None


def check_handshake(text, sock, wait):
    # the first message a Dask scheduler sends: length n (8 bytes), then nframes and their lengths
    not_dask = f"--scheduler {text}: not a Dask scheduler"
    head = receive(sock, 16, wait)
    if len(head) < 16:
        raise RunRefused(f"{not_dask} (it sent {'nothing' if not head else counted(len(head), 'byte')} in {wait:g} s; "
                         "a web server, or the dashboard's port? the scheduler's is usually 8786)")
    n, frames = struct.unpack("<QQ", head)
    if not (16 <= n <= MAX_HANDSHAKE and 1 <= frames <= 64):
        raise RunRefused(f"{not_dask} (it answered in another protocol: {head[:16]!r})")
    lengths = struct.unpack(f"<{frames}Q", receive(sock, 8 * frames, wait).ljust(8 * frames, b"\0"))
    if 8 + 8 * frames + sum(lengths) != n:
        raise RunRefused(f"{not_dask} (it answered in another protocol: {head[:16]!r})")


def receive(sock, count, wait):
    # up to `count` bytes, whatever arrives before `wait` seconds have passed
    data, deadline = b"", time.monotonic() + wait
    while len(data) < count and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(count - len(data))
        except (socket.timeout, TimeoutError):
            break
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data
