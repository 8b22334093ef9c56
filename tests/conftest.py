"""Shared fixtures: a tiny random BERT (hidden 32, 2 layers) so unit tests need no network."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from adapterlib import tiny_config

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def make_tiny():
    """Build a tiny random-weight sequence classifier of a given model type, seeded."""
    def make(model_type="bert", num_labels=2, seed=0, **overrides):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(
            tiny_config(model_type, num_labels=num_labels, **overrides))
        return model.eval()
    return make


@pytest.fixture
def tiny_batch():
    torch.manual_seed(1)
    ids = torch.randint(5, 120, (3, 10))
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="session")
def minilm():
    """The real bundled all-MiniLM-L6-v2 (offline), loaded once per session."""
    from adapterlib import load_base_model
    torch.manual_seed(0)
    model, tokenizer = load_base_model()
    return model.eval(), tokenizer
