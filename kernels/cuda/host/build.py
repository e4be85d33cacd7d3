"""Build, cache and load a kernels/cuda .cu file as a host shared library (the `cuda-cpu` path).

g++ compiles the unchanged .cu with cuda_host.h force-included and runtime.h + one NST_EXPORT per
kernel appended (a generated glue file that #includes the .cu, so compiler errors, printf and gdb
point at the real source). The library is cached like Numba's: under $NST_CUDA_CPU_CACHE, else
__pycache__ beside this file, else ~/.cache/nst/cuda-cpu, named by a hash of the sources, the
flags and the compiler version; rebuilt only when one of them changes.

Builds ($NST_CUDA_CPU_BUILD): "fast" (default, fibers), "asan" (AddressSanitizer + UBSan),
"tsan" (ThreadSanitizer, one OS thread per CUDA thread) and "cov" (gcov counts of every source line). The
sanitizer builds need their runtime preloaded into Python: run them in a process started with
sanitizer_env(build).
Launch order ($NST_CUDA_CPU_ORDER): natural, reverse or shuffle (blocks and threads; seed
$NST_CUDA_CPU_SEED).
"""
import contextlib
import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading

import numpy as np

HOST = os.path.dirname(os.path.abspath(__file__))
CUDA = os.path.dirname(HOST)
HEADERS = ("cuda_host.h", "wmma_host.h", "mma.h", "runtime.h")
COMMON = ("-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wno-unknown-pragmas",
          "-Wno-unused-function", "-Wno-unused-variable")
BUILDS = {
    "fast": ("-O2", "-g"),
    "asan": ("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
             "-fno-omit-frame-pointer"),
    "tsan": ("-O1", "-g", "-fsanitize=thread", "-DNST_HOST_THREADS"),
    "cov": ("-O1", "-g", "--coverage"),           # gcov line counts (coverage_dir: where they land)
}
SANITIZER_LIB = {"asan": "libasan.so", "tsan": "libtsan.so"}
ORDERS = {"natural": 0, "reverse": 1, "shuffle": 2}
_LAUNCH = threading.Lock()      # one emulated launch at a time: the runtime's state is per library, not per call
_DECLARED = re.compile(r'extern "C" __global__ void (\w+)\(')


class HostCompilerMissing(RuntimeError):
    """No C++ compiler on this machine: the cuda-cpu path cannot build."""


class HostBuildError(RuntimeError):
    """g++ rejected a .cu file (an unemulated CUDA feature, or a plain error): message has its log."""


class HostKernelError(RuntimeError):
    """An emulated launch failed: divergent barrier, deadlock, bad shuffle mask, misaligned WMMA…"""


class LaunchCfg(ctypes.Structure):
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3), ("shmem", ctypes.c_ulonglong),
                ("order", ctypes.c_int), ("seed", ctypes.c_ulonglong)]


def compiler():
    # -> the C++ compiler's path ($CXX, else g++, c++, clang++)
    for name in filter(None, (os.environ.get("CXX"), "g++", "c++", "clang++")):
        path = shutil.which(name)
        if path:
            return path
    raise HostCompilerMissing("cuda-cpu: no C++ compiler found (install g++, or set CXX to one)")


def build_name():
    name = os.environ.get("NST_CUDA_CPU_BUILD", "fast")
    if name not in BUILDS:
        raise ValueError(f"NST_CUDA_CPU_BUILD={name!r}: choose one of {', '.join(BUILDS)}")
    return name


def launch_order():
    name = os.environ.get("NST_CUDA_CPU_ORDER", "natural")
    if name not in ORDERS:
        raise ValueError(f"NST_CUDA_CPU_ORDER={name!r}: choose one of {', '.join(ORDERS)}")
    return ORDERS[name], int(os.environ.get("NST_CUDA_CPU_SEED", "0"))


def sanitizer_env(build, env=None):
    # -> a copy of env (default os.environ) for a Python process that can load a sanitizer build
    env = dict(os.environ if env is None else env, NST_CUDA_CPU_BUILD=build)
    if build in SANITIZER_LIB:
        lib = subprocess.run([compiler(), f"-print-file-name={SANITIZER_LIB[build]}"], check=True,
                             capture_output=True, text=True).stdout.strip()
        env["LD_PRELOAD"] = lib
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        env["TSAN_OPTIONS"] = "halt_on_error=1:report_signal_unsafe=0"
    return env


def cache_dir():
    for d in (os.environ.get("NST_CUDA_CPU_CACHE"), os.path.join(HOST, "__pycache__"),
              os.path.join(os.path.expanduser("~"), ".cache", "nst", "cuda-cpu")):
        if not d:
            continue
        try:
            os.makedirs(d, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            continue
    return tempfile.gettempdir()


@functools.lru_cache(maxsize=None)
def _compiler_version(cxx):
    return subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0]


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


_LOCAL_INCLUDE = re.compile(r'^#include "([\w.]+)"[ \t]*$', re.M)   # as _common's (no import: cycle)
_SHARED = re.compile(r"(extern\s+)?__shared__\s+([^;]*?)\s*;")
_OVERRIDES = {}                 # file name -> replacement text (patched(): planted-bug tests)


def file_text(name):
    return _OVERRIDES[name] if name in _OVERRIDES else _read(os.path.join(CUDA, name))


def closure(name, seen=None):
    # -> {file: text} for name and the local .cuh files it includes, recursively
    seen = {} if seen is None else seen
    seen[name] = file_text(name)
    for inc in _LOCAL_INCLUDE.findall(seen[name]):
        if inc not in seen:
            closure(inc, seen)
    return seen


def rewrite(text):
    # each __shared__ declaration also reports itself (nst::use_shared: size limit, NaN poison);
    # extern __shared__ T a[] becomes the launch's dynamic shared memory. Lines are kept.
    def one(m):
        decl = m.group(2)
        ident = re.match(r"(.*?)(\w+)\s*((?:\[.*\])?)$", decl)
        if ident is None:
            return m.group(0)
        if m.group(1):
            ctype = re.sub(r"__align__\(\d+\)", "", ident.group(1)).strip()
            return f"static nst::DynShared<{ctype}> {ident.group(2)};"
        name = ident.group(2)
        return f"__shared__ {decl}; nst::use_shared(&{name}, sizeof({name}), __FILE__, __LINE__);"
    return _SHARED.sub(one, text)


def glue(kernels, cu_path):
    # the translation unit: the (rewritten) .cu, then the runtime and one export per kernel
    exports = "".join(f"NST_EXPORT({k})\n" for k in kernels)
    return f'#include "{cu_path}"\n#include "runtime.h"\n{exports}'


def compile_library(cu_name, build, extra_flags=()):
    # -> (path of the cached shared library for kernels/cuda/<cu_name>, its kernel names)
    files = closure(cu_name)
    kernels = _DECLARED.findall("\n".join(files.values()))
    cxx = compiler()
    flags = COMMON + BUILDS[build] + tuple(extra_flags)
    key = hashlib.sha256("\0".join([_compiler_version(cxx), " ".join(flags),
                                    *(f"{k}\0{v}" for k, v in sorted(files.items())),
                                    *(_read(os.path.join(HOST, h)) for h in HEADERS),
                                    _read(__file__)]).encode()).hexdigest()[:16]
    stem = f"{os.path.splitext(cu_name)[0]}-{build}-{key}"
    out = os.path.join(cache_dir(), stem + ".so")
    if os.path.exists(out):
        return out, kernels
    if build == "cov":                              # kept: gcov's notes, and the counts written at exit
        work = coverage_dir(cu_name)
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
    else:
        work = tempfile.mkdtemp(prefix=stem, dir=cache_dir())
    try:
        for name, text in files.items():
            with open(os.path.join(work, name), "w", encoding="utf-8") as f:
                f.write(f'#line 1 "{os.path.join(CUDA, name)}"\n' + rewrite(text))
        unit = os.path.join(work, "glue.cpp")
        with open(unit, "w", encoding="utf-8") as f:
            f.write(glue(kernels, os.path.join(work, cu_name)))
        tmp = os.path.join(work, "lib.so")
        cmd = [cxx, *flags, "-include", os.path.join(HOST, "cuda_host.h"), "-I", HOST, "-o", tmp, unit]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            log = "\n".join(run.stderr.splitlines()[:40])
            raise HostBuildError(f"cuda-cpu: {cu_name} does not build on the host ({build}):\n{log}")
        os.replace(tmp, out)
    finally:
        if build != "cov":
            shutil.rmtree(work, ignore_errors=True)
    return out, kernels


def coverage_dir(cu_name):
    # the "cov" build's folder for cu_name: glue.cpp, its .gcno notes and, after a run, .gcda counts
    return os.path.join(cache_dir(), f"cov-{os.path.splitext(cu_name)[0]}")


def line_counts(cu_names):
    # -> {source path: {line: executions}} from the .gcda counts of the "cov" builds of cu_names
    import gzip
    import json
    counts = {}
    for name in cu_names:
        work = coverage_dir(name)
        notes = [f for f in os.listdir(work) if f.endswith(".gcda")]
        for note in notes:
            subprocess.run(["gcov", "-j", "-o", work, os.path.join(work, note)], cwd=work,
                           capture_output=True, check=True)
        for f in os.listdir(work):
            if f.endswith(".gcov.json.gz"):
                with gzip.open(os.path.join(work, f), "rt") as g:
                    for src in json.load(g)["files"]:
                        lines = counts.setdefault(src["file"], {})
                        for ln in src["lines"]:
                            lines[ln["line_number"]] = lines.get(ln["line_number"], 0) + ln["count"]
    return counts


def prebuild(cu_names, build=None, jobs=None):
    # compile several .cu files at once (g++ processes in parallel; the cache makes repeats free)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool:
        list(pool.map(lambda name: compile_library(name, build or build_name()), cu_names))


@contextlib.contextmanager
def patched(files):
    # within: kernels/cuda files read as the given texts ({name: text}), e.g. with a planted bug
    old = dict(_OVERRIDES)
    _OVERRIDES.update(files)
    module.cache_clear()
    try:
        yield
    finally:
        _OVERRIDES.clear()
        _OVERRIDES.update(old)
        module.cache_clear()


def _check_sanitizer_loaded(build):
    if build not in SANITIZER_LIB:
        return
    with open("/proc/self/maps", encoding="utf-8") as f:
        if SANITIZER_LIB[build].split(".")[0] in f.read():
            return
    raise HostBuildError(f"cuda-cpu: the {build} build needs its runtime preloaded; start Python with "
                         f"kernels.cuda.host.build.sanitizer_env({build!r}) (LD_PRELOAD={SANITIZER_LIB[build]})")


class HostModule:
    """One .cu built for the host: get_function(name) -> HostKernel (cupy.RawModule's interface)."""

    def __init__(self, cu_name, build="fast", extra_flags=()):
        _check_sanitizer_loaded(build)
        path, self.kernels = compile_library(cu_name, build, extra_flags)
        self.cu_name, self.lib = cu_name, ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)

    def get_function(self, name):
        if name not in self.kernels:
            raise KeyError(f"{self.cu_name}: no kernel {name!r}; kernels are {', '.join(self.kernels)}")
        return HostKernel(self, name)


SCALARS = {"i32": np.int32, "u32": np.uint32, "f32": np.float32}
POINTERS = {"f32*": np.float32, "u32*": np.uint32, "i32*": np.int32}
CTYPES = {"i32": ctypes.c_int32, "u32": ctypes.c_uint32, "f32": ctypes.c_float}


def _dims(d, what):
    d = tuple(int(v) for v in (d if isinstance(d, tuple) else (d,)))
    if not 1 <= len(d) <= 3:
        raise HostKernelError(f"{what}: {d}, expected 1 to 3 dimensions")
    return d + (1,) * (3 - len(d))


class HostKernel:
    """A kernel of a HostModule, called like a cupy RawKernel: k(grid, block, args, shared_mem=0)."""

    def __init__(self, module, name):
        self.module, self.name = module, name
        self.signature = getattr(module.lib, f"nst_sig_{name}")
        self.signature.restype = ctypes.c_char_p
        self.params = self.signature().decode().split(",")
        self._launch = getattr(module.lib, f"nst_launch_{name}")
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [ctypes.POINTER(LaunchCfg), ctypes.POINTER(ctypes.c_void_p),
                                 ctypes.c_char_p, ctypes.c_size_t]

    def _arg(self, k, p, a):
        # one argument checked against the kernel's parameter type -> a ctypes value
        where = f"{self.module.cu_name}:{self.name} argument {k} ({p})"
        if p in POINTERS:
            if not isinstance(a, np.ndarray):
                raise HostKernelError(f"{where}: got {type(a).__name__}, expected a host (numpy) array")
            if a.dtype != POINTERS[p] or not a.flags.c_contiguous:
                raise HostKernelError(f"{where}: got a {a.dtype} array (C-contiguous: {a.flags.c_contiguous})")
            return ctypes.c_void_p(a.ctypes.data)
        if isinstance(a, (bool, int, float)):
            raise HostKernelError(f"{where}: got a Python {type(a).__name__}, which CuPy passes as 8 bytes; "
                                  f"cast it to np.{SCALARS[p].__name__}")
        if type(a) is not SCALARS[p]:
            raise HostKernelError(f"{where}: got {type(a).__name__}, expected np.{SCALARS[p].__name__}")
        return CTYPES[p](a)

    def __call__(self, grid, block, args, shared_mem=0):
        if len(args) != len(self.params):
            raise HostKernelError(f"{self.module.cu_name}:{self.name}: {len(args)} arguments, the kernel "
                                  f"takes {len(self.params)} ({', '.join(self.params)})")
        values = [self._arg(k, p, a) for k, (p, a) in enumerate(zip(self.params, args))]
        ptrs = (ctypes.c_void_p * len(values))(*(ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values))
        order, seed = launch_order()
        cfg = LaunchCfg((ctypes.c_uint * 3)(*_dims(grid, "grid")), (ctypes.c_uint * 3)(*_dims(block, "block")),
                        int(shared_mem), order, seed)
        err = ctypes.create_string_buffer(2048)
        with _LAUNCH:
            failed = self._launch(ctypes.byref(cfg), ptrs, err, len(err))
        if failed:
            raise HostKernelError(f"{self.module.cu_name}:{self.name}: {err.value.decode(errors='replace')}")


@functools.lru_cache(maxsize=None)
def _module(cu_name, build, extra_flags):
    return HostModule(cu_name, build, extra_flags)


def module(cu_name, build=None, extra_flags=()):
    # the loaded library for kernels/cuda/<cu_name>, built on first use
    return _module(cu_name, build or build_name(), tuple(extra_flags))


module.cache_clear = _module.cache_clear
