"""The free memory a run plans with: a container's cgroup limit (v2 or v1) counts, not only the host's."""
import pytest

from nst import memory

GIB = 1 << 30


def cgroup(root, rel, files):
    # write files {name: text} into root/rel (a fake /sys/fs/cgroup folder)
    folder = root / rel
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def headroom(tmp_path, proc_lines):
    proc = tmp_path / "cgroup"
    proc.write_text("\n".join(proc_lines) + "\n")
    return memory.cgroup_headroom(root=tmp_path / "fs", proc=proc)


def test_a_v2_limit_on_a_parent_counts_with_reclaimable_cache(tmp_path):
    # 4 GiB limit on the parent, 3 GiB used of which 1 GiB inactive file cache: 2 GiB left; the
    # child's own unlimited "max" does not lift it
    cgroup(tmp_path / "fs", "box", {"memory.max": f"{4 * GIB}\n", "memory.current": f"{3 * GIB}\n",
                                     "memory.stat": f"anon 1\ninactive_file {GIB}\n"})
    cgroup(tmp_path / "fs", "box/run", {"memory.max": "max\n", "memory.current": "0\n", "memory.stat": ""})
    assert headroom(tmp_path, ["0::/box/run"]) == 2 * GIB


def test_a_v1_limit_counts_and_no_limit_is_none(tmp_path):
    cgroup(tmp_path / "fs", "memory/docker/abc", {"memory.limit_in_bytes": f"{8 * GIB}",
                                                  "memory.usage_in_bytes": f"{GIB}",
                                                  "memory.stat": "cache 5\ninactive_file 0\n"})
    cgroup(tmp_path / "fs", "memory", {"memory.limit_in_bytes": "9223372036854771712",
                                       "memory.usage_in_bytes": "7", "memory.stat": ""})
    assert headroom(tmp_path, ["4:memory:/docker/abc", "0::/"]) == 7 * GIB
    assert headroom(tmp_path, ["4:memory:/", "0::/"]) is None
    assert headroom(tmp_path, ["0::/nothing/here"]) is None
    assert memory.cgroup_headroom(proc=tmp_path / "no such file") is None


@pytest.mark.parametrize("limited, expected", [(None, 20 * GIB), (3 * GIB, 3 * GIB), (30 * GIB, 20 * GIB)])
def test_available_is_the_host_s_or_the_container_s_whichever_is_less(monkeypatch, limited, expected):
    # a run in a 3 GiB container on a 24 GiB host was planned with the host's 20 GiB free
    import builtins
    import io
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: io.StringIO(f"MemAvailable: {20 * GIB // 1024} kB\n")
                        if f == "/proc/meminfo" else real_open(f, *a, **k))
    monkeypatch.setattr(memory, "cgroup_headroom", lambda: limited)
    assert memory.available("numba") == expected
