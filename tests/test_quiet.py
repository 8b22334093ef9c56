"""`train --quiet` means no progress output at all: a successful run prints nothing on stderr, even when it
tokenises a cold cache (the datasets library's map, cast and save bars), and the libraries' settings are
restored afterwards (issue 30)."""
from __future__ import annotations

import datasets
import pytest
from transformers.utils import logging as hf_logging

from adapterlib.cli import main


def _train(tiny_model_dir, tiny_glue_dir, out, *extra):
    return ["train", "--task", "rte", "--model", str(tiny_model_dir), "--glue-dir", str(tiny_glue_dir),
            "--max-steps", "2", "--max-train-examples", "32", "--max-eval-examples", "16", "--max-length", "32",
            "--batch-size", "16", "--output-dir", str(out), "--no-checkpoint", "--threads", "1", *extra]


@pytest.fixture
def bars_on(monkeypatch, tmp_path):
    """A cold tokenisation cache, and the libraries' progress bars on (as in a fresh terminal session)."""
    monkeypatch.setenv("ADAPTERLIB_CACHE", str(tmp_path / "cache"))
    was = not datasets.are_progress_bars_disabled()
    datasets.enable_progress_bars()
    hf_logging.enable_progress_bar()
    yield
    (datasets.enable_progress_bars if was else datasets.disable_progress_bars)()


def test_quiet_train_prints_nothing_on_stderr_on_a_cold_cache(bars_on, tiny_model_dir, tiny_glue_dir, tmp_path,
                                                               capfd):
    assert main(_train(tiny_model_dir, tiny_glue_dir, tmp_path / "runs", "--quiet")) == 0
    out, err = capfd.readouterr()
    assert err == "" and "record:" in out
    assert any((tmp_path / "cache").rglob("adapterlib_meta.json"))   # the cache was cold: it tokenised
    assert not datasets.are_progress_bars_disabled() and hf_logging.is_progress_bar_enabled()   # restored


def test_without_quiet_the_cold_cache_shows_progress(bars_on, tiny_model_dir, tiny_glue_dir, tmp_path, capfd):
    assert main(_train(tiny_model_dir, tiny_glue_dir, tmp_path / "runs")) == 0
    assert "tokenizing" in capfd.readouterr().err   # the bars stay on by default
