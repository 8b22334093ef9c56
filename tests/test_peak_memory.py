"""Run records measure peak resident memory one correct way, and say which (issue 16)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from adapterlib import records

LINUX = Path("/proc/self/status").exists()


@pytest.mark.skipif(not LINUX, reason="VmHWM is Linux's")
def test_a_child_reports_its_own_peak_not_its_parents():
    """ru_maxrss carries the parent's peak into a child across fork/exec; a sweep worker's run would
    report at least its parent's size. The record's figure must be the child's own."""
    big = bytearray(1 << 30)
    big[::4096] = b"\1" * (len(big) // 4096)  # this process: 1 GiB more resident
    run = subprocess.run([sys.executable, "-c", "import json; from adapterlib.records import peak_memory_mb; "
                          "print(json.dumps(peak_memory_mb()))"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    child = json.loads(run.stdout)
    del big
    assert child["peak_rss_method"] == "VmHWM (/proc/self/status)"
    assert 10 < child["peak_rss_mb"] < 900  # an interpreter with torch: a few hundred MB, not this process's 1 GiB+


def test_peak_is_at_least_the_current_resident_size():
    peak, method = records.peak_rss()
    now = psutil.Process().memory_info().rss / 2 ** 20
    assert peak >= now * 0.99 and method
    out = records.peak_memory_mb()
    assert out["peak_rss_mb"] >= now * 0.99 and out["peak_rss_method"] == method


def test_without_proc_it_says_what_psutil_gave(monkeypatch):
    class NoProc(type(Path())):
        def read_text(self, *args, **kwargs):
            raise FileNotFoundError(str(self))
    monkeypatch.setattr(records, "Path", NoProc)
    peak, method = records.peak_rss()
    assert method.startswith("psutil") and peak > 0


def test_a_copy_without_its_git_history_names_its_commit(monkeypatch):
    """$ADAPTERLIB_GIT_REVISION replaces the checkout's own answer (a stale or missing .git on another machine),
    and the record says where the commit came from; unset, the checkout is asked as before."""
    from adapterlib import records
    monkeypatch.delenv(records.REVISION_ENV, raising=False)
    own = records.git_revision()
    assert "source" not in own
    monkeypatch.setenv(records.REVISION_ENV, "b01fb25")
    assert records.git_revision() == {"commit": "b01fb25", "dirty": None, "source": "$ADAPTERLIB_GIT_REVISION"}
    assert records.provenance()["git"]["commit"] == "b01fb25"
