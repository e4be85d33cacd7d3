"""What the web tests share: start `python -m nst ...` and read the URL it prints, plain HTTP
requests (multipart forms by hand: the standard library only), a headless Chromium."""
import json
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser_missing():
    # -> the one reason the browser tests skip, or None
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (CI installs Debian's chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install '.[test]')"
    return None


class Process:
    """`python -m nst ARGS` from the repository root; its stdout and stderr read on threads."""

    def __init__(self, args, cwd=None):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        self.p = subprocess.Popen([sys.executable, "-m", "nst", *map(str, args)], cwd=cwd or ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines, self.err = queue.Queue(), []
        threading.Thread(target=lambda: [self.lines.put(ln) for ln in self.p.stdout], daemon=True).start()
        threading.Thread(target=lambda: [self.err.append(ln) for ln in self.p.stderr], daemon=True).start()

    def url(self, timeout=120):
        # the first URL it prints
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.kill()
                raise AssertionError("no URL printed; stderr:\n" + "".join(self.err[-30:])) from None
            m = re.search(r"http://\S+", line)
            if m:
                return m.group(0)

    def wait(self, timeout=120):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("did not exit; stderr:\n" + "".join(self.err[-30:])) from None

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def base_of(url):
    m = re.match(r"(http://[^/]+)/", url)
    return m.group(1)


def request(url, data=None, headers=None, method=None):
    # -> (status, body bytes); 4xx/5xx are answers, not exceptions
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def multipart(fields=(), files=()):
    # fields [(name, text)], files [(name, filename, bytes)] -> (body, headers)
    boundary = uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                   f'Content-Type: application/octet-stream\r\n\r\n'.encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def post_form(url, fields=(), files=(), headers=None):
    body, h = multipart(fields, files)
    status, data = request(url, body, {**h, **(headers or {})}, "POST")
    try:
        return status, json.loads(data)
    except ValueError:
        return status, {"raw": data.decode(errors="replace")}


def png_bytes(rng, h=48, w=64):
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype="uint8")).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(side=100_000):
    # a valid PNG header declaring side×side RGB pixels, with (almost) no data: a decompression bomb's shape
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def files_under(folder):
    return {p for p in Path(folder).rglob("*") if p.is_file()}


class FakeRun:
    # what nst.web.channel.Publisher reads of a Run, counting the pictures it asks for and those it
    # makes: the k-th asked for is all k
    def __init__(self):
        from nst.run.settings import Settings
        self.settings = Settings(iterations=10, style_layers=("block1_conv1",))
        self.sizes, self.scale, self.history, self.opt, self.controls = [64], 0, [], object(), None
        self.layer_history = [{"block1_conv1": 2.0}]      # the last iteration's J_s^l (Run.layer_history)
        self.caps = [10]                                  # most iterations per scale (Run.caps)
        self.outputs = self.made = 0                      # pictures asked for (Run.output_later); made

    def output_later(self):
        import numpy as np
        self.outputs += 1
        k = self.outputs

        def make():
            self.made += 1
            return np.full((8, 8, 3), k, np.float32)
        return make

    def output(self):
        return self.output_later()()

    def early_stop_note(self):
        return ""                                         # L-BFGS never ended a scale early (Run.early_stop_note)


def decoded(image_base64):
    # a page's base64 JPEG -> H×W×3 uint8
    import base64
    import io

    import numpy as np
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(image_base64))).convert("RGB"))
