"""Loaded by pytest for tests/ and notebooks/ alike (nbval runs the notebooks' kernels from here)."""
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Notebook kernels (nbval, papermill) run in notebooks/, so a relative GLUE_DIR must be made absolute here.
if os.environ.get("GLUE_DIR"):
    os.environ["GLUE_DIR"] = str(Path(os.environ["GLUE_DIR"]).expanduser().resolve())
