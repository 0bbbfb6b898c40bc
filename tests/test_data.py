"""Sources and batching: local files in both formats, length-grouped batches, dynamic
padding, and the bundled samples being exactly what the project's generator writes."""
import json

import pytest

from adapterxl.data.preprocess import LengthGroupedBatches, loader
from adapterxl.formats import get_format


def encode(rows, tokenizer, max_length):
    return get_format("pair_classification").encode(rows, tokenizer, max_length, True, None)
from adapterxl.data.sources import available_languages, load_split
from adapterxl.tasks import get_task


def test_jsonl_and_tsv_give_the_same_rows(tmp_path):
    task = get_task("xnli")
    rows = [{"premise": "Der Hund\tläuft.", "hypothesis": "Er läuft nicht.", "label": 2},
            {"premise": "Ein Satz.", "hypothesis": "Noch einer.", "label": "neutral"}]
    (tmp_path / "test.de.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "test.fr.tsv").write_text(
        "premise\thypothesis\tlabel\nUne phrase.\tEncore une.\tentailment\nA.\tB.\t\n")
    de = load_split(task, "test", "de", data_dir=tmp_path)
    assert de == [{"text": ("Der Hund\tläuft.", "Er läuft nicht."), "label": 2},
                  {"text": ("Ein Satz.", "Noch einer."), "label": 1}]
    fr = load_split(task, "test", "fr", data_dir=tmp_path)
    assert fr[0] == {"text": ("Une phrase.", "Encore une."), "label": 0}
    assert fr[1]["label"] is None  # hidden test label: predict-only
    assert available_languages(task, "test", data_dir=tmp_path) == ["de", "fr"]


def test_empty_split_is_an_error(tmp_path):
    from adapterxl.errors import AdapterxlError

    (tmp_path / "train.jsonl").write_text("\n")
    with pytest.raises(AdapterxlError, match="is empty"):
        load_split(get_task("mnli"), "train", data_dir=tmp_path)


def test_length_grouped_batches_cover_every_example_once():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    sampler = LengthGroupedBatches(lengths, batch_size=16, seed=3, group=10)
    batches = list(sampler)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert len(batches) == len(sampler) == 63
    # Within a batch lengths are close: far less spread than random batches would have.
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 15
    # Deterministic per epoch, different across epochs.
    assert batches == list(LengthGroupedBatches(lengths, 16, seed=3, group=10))
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_dynamic_padding_pads_to_the_batch_maximum(tiny):
    rows = load_split(get_task("xnli"), "test", "en", data="samples")
    feats = encode(rows, tiny.tokenizer, 64)
    dl = loader(feats, tiny.tokenizer, batch_size=8, shuffle=True, seed=0)
    widths = set()
    for b in dl:
        widths.add(b["input_ids"].shape[1])
        assert b["attention_mask"].sum(1).max() == b["input_ids"].shape[1]
        assert b["labels"].shape[0] == b["input_ids"].shape[0]
    assert len(widths) > 1, "every batch has the same width: padding is not dynamic"


def test_pair_encoding_uses_xlmr_template(tiny):
    f = encode([{"text": ("a b", "c d"), "label": 0}], tiny.tokenizer, 32)[0]
    ids = f["input_ids"]
    assert ids[0] == tiny.tokenizer.cls_token_id and ids[-1] == tiny.tokenizer.sep_token_id
    sep = tiny.tokenizer.sep_token_id
    assert any(ids[i] == ids[i + 1] == sep for i in range(len(ids) - 1))
    assert f["labels"] == 0


def test_bundled_samples_are_what_the_generator_writes(tmp_path):
    import importlib.util

    from adapterxl.data.sources import SAMPLES

    # a build tool beside the samples, loaded by path (not part of the runtime package)
    spec = importlib.util.spec_from_file_location("make_nli_samples",
                                                  SAMPLES.parent / "make_nli_samples.py")
    synthetic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synthetic)

    written = synthetic.write_samples(tmp_path)
    assert written
    for path in written:
        rel = path.relative_to(tmp_path)
        assert (SAMPLES / rel).read_bytes() == path.read_bytes(), rel


def test_bundled_tokenizer_is_what_the_build_script_writes(tmp_path):
    import subprocess
    import sys

    from adapterxl.backbone import TOKENIZER_FILE

    out = tmp_path / "tok.json"
    script = TOKENIZER_FILE.parent.parent / "make_tokenizer.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True,
                   capture_output=True)
    assert out.read_bytes() == TOKENIZER_FILE.read_bytes()
