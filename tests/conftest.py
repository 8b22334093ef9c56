"""Shared fixtures: a tiny random BERT (hidden 32, 2 layers) so unit tests need no network."""
import os

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from adapterlib import tiny_config

# at most 2 threads, and no more than this process may use (an xdist worker is pinned to its cores: ../conftest.py)
torch.set_num_threads(min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2))


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


WORDS = ("the a cat dog sat ran on under mat rug is was not big small red blue house tree bird sky "
         "happy sad good bad movie film great awful loved hated").split()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random BERT + WordPiece tokenizer saved like a hub model, for end-to-end runs in seconds."""
    from transformers import BertForSequenceClassification, BertTokenizerFast
    root = tmp_path_factory.mktemp("tiny-bert")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ".", ","]) + "\n")
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab.read_text().split())})
    tokenizer.save_pretrained(root)
    torch.manual_seed(0)
    BertForSequenceClassification(tiny_config("bert", vocab_size=len(WORDS) + 7)).save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def tiny_glue_dir(tmp_path_factory):
    """The one synthetic GLUE folder of the tests: SST-2, CoLA, RTE and STS-B train (320 rows) + dev (40 rows),
    and a QNLI dev file alone; words from WORDS, with a learnable toy signal per task."""
    import random
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("glue")
    def sentence(word):
        return " ".join(rng.choice(WORDS[:20]) for _ in range(rng.randint(3, 9))) + f" {word} ."
    for task in ("SST-2", "CoLA", "RTE", "STS-B", "QNLI"):
        (root / task).mkdir()
    for split, n in (("train", 320), ("dev", 40)):
        rows = [(sentence("good" if (y := i % 2) else "bad"), y) for i in range(n)]
        (root / "SST-2" / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))
        # CoLA has no header: source, label, original label, sentence
        (root / "CoLA" / f"{split}.tsv").write_text(
            "".join(f"src\t{i % 2}\t\t{sentence('happy' if i % 2 else 'sad')}\n" for i in range(n)))
        rte = [(i, sentence("cat"), sentence("dog" if i % 2 else "cat"), "not_entailment" if i % 2 else "entailment")
               for i in range(n)]
        (root / "RTE" / f"{split}.tsv").write_text(
            "index\tsentence1\tsentence2\tlabel\n" + "".join("\t".join(map(str, r)) + "\n" for r in rte))
        header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
        sts = [f"{i}\tx\tx\tx\tx\tx\tx\t{sentence('sky')}\t{sentence('sky')}\t{(i % 11) / 2:.3f}\n" for i in range(n)]
        (root / "STS-B" / f"{split}.tsv").write_text(header + "".join(sts))
    (root / "QNLI" / "dev.tsv").write_text("index\tquestion\tsentence\tlabel\n0\tWhy?\tBecause.\tentailment\n")
    return root


@pytest.fixture(scope="session")
def word_tokenizer(tiny_model_dir):
    """The WordPiece tokenizer of tiny_model_dir (every word of tiny_glue_dir is in its vocabulary)."""
    from transformers import BertTokenizerFast
    return BertTokenizerFast.from_pretrained(str(tiny_model_dir))
