"""edge_embedder.text.tokenizer against transformers' CLIPTokenizerFast, id for id.

The reference is ``CLIPTokenizerFast.from_pretrained(converters/clip_tokenizer)``
called as the CLIP text tower is fed: ``padding="max_length", truncation=True,
max_length=77``. The corpus (``tests/fixtures/text_corpus.json``) covers
punctuation, contractions, combining vs precomposed accents, CJK, emoji, odd
whitespace, HTML entities, digits, long words, a paragraph that overflows 77
tokens and the empty string.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edge_embedder.errors import EdgeEmbedderError, MetadataError, MissingDependencyError, OptionsError
from edge_embedder.text.tokenizer import TEXT_EXTRA_HINT, ClipTokenizer, Encoding, TextInputError, TokenizerConfig

from .conftest import FIXTURES, ROOT

TOKENIZER_DIR = ROOT / "converters" / "clip_tokenizer"
TOKENIZER_JSON = TOKENIZER_DIR / "tokenizer.json"
CORPUS = json.loads((FIXTURES / "text_corpus.json").read_text(encoding="utf-8"))
MAX_LENGTH = 77
BOS, EOS = 49406, 49407
SEED_IDS = {
    "a photo of a cat": [BOS, 320, 1125, 539, 320, 2368, EOS],
    "a photo of a dog": [BOS, 320, 1125, 539, 320, 1929, EOS],
    "a photo of a car": [BOS, 320, 1125, 539, 320, 1615, EOS],
}
PARAGRAPH = max(CORPUS, key=len)


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer.from_file(TOKENIZER_JSON)


@pytest.fixture(scope="module")
def reference():
    transformers = pytest.importorskip("transformers")
    return transformers.CLIPTokenizerFast.from_pretrained(str(TOKENIZER_DIR))


def reference_ids(reference, texts, max_length=MAX_LENGTH):
    out = reference(texts, padding="max_length", truncation=True, max_length=max_length)
    return out["input_ids"], out["attention_mask"]


def test_corpus_is_what_the_tests_rely_on():
    assert isinstance(CORPUS, list) and all(isinstance(t, str) for t in CORPUS)
    assert "" in CORPUS and set(SEED_IDS) <= set(CORPUS)
    assert "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e" in CORPUS and "cafe\u0301 cre\u0300me bru\u0302le\u0301e" in CORPUS
    assert 280 <= len(PARAGRAPH.split()) <= 400


@pytest.mark.parametrize("text", list(SEED_IDS))
def test_seed_captions_give_the_real_clip_ids(tokenizer, text):
    enc = tokenizer.encode(text)
    expected = SEED_IDS[text]
    assert enc.ids.dtype == np.int32 and enc.ids.shape == (MAX_LENGTH,)
    assert enc.ids[: len(expected)].tolist() == expected
    assert (enc.ids[len(expected):] == EOS).all()  # default pad id is EOS, as in transformers
    assert enc.length == len(expected) and not enc.truncated


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=lambda i: repr(CORPUS[i][:24]))
def test_matches_clip_tokenizer_fast(tokenizer, reference, index):
    text = CORPUS[index]
    ids, mask = reference_ids(reference, text)
    enc = tokenizer.encode(text)
    assert enc.ids.tolist() == ids
    assert enc.length == sum(mask)
    assert enc.ids[enc.length - 1] == EOS and enc.ids[0] == BOS


def test_batch_matches_clip_tokenizer_fast_and_single_calls(tokenizer, reference):
    ids, mask = reference_ids(reference, CORPUS)
    batch = tokenizer.encode_batch(CORPUS)
    assert [e.ids.tolist() for e in batch] == ids
    assert [e.length for e in batch] == [sum(m) for m in mask]
    singles = [tokenizer.encode(t) for t in CORPUS]
    assert [(e.length, e.truncated) for e in batch] == [(e.length, e.truncated) for e in singles]
    # batch order and size do not matter
    rev = tokenizer.encode_batch(CORPUS[::-1])[::-1]
    assert all(np.array_equal(a.ids, b.ids) for a, b in zip(batch, rev))
    assert tokenizer.encode_batch([]) == []
    assert tokenizer.encode_batch(iter(["a photo of a cat"]))[0].ids.tolist() == batch[CORPUS.index("a photo of a cat")].ids.tolist()


def test_truncated_flag_matches_untruncated_length(tokenizer, reference):
    for text in CORPUS:
        full = reference(text)["input_ids"]
        assert tokenizer.encode(text).truncated == (len(full) > MAX_LENGTH), text[:40]


def test_paragraph_is_truncated_keeping_eos(tokenizer, reference):
    full = reference(PARAGRAPH)["input_ids"]
    assert len(full) > MAX_LENGTH
    enc = tokenizer.encode(PARAGRAPH)
    assert enc.truncated and enc.length == MAX_LENGTH
    assert enc.ids.tolist() == full[: MAX_LENGTH - 1] + [EOS]


@pytest.mark.parametrize("words, truncated", [(74, False), (75, False), (76, True), (300, True)])
def test_truncation_boundary(tokenizer, words, truncated):
    enc = tokenizer.encode("cat " * words)  # "cat" is one token (2368)
    assert enc.truncated is truncated
    assert enc.length == min(words + 2, MAX_LENGTH)
    assert enc.ids[enc.length - 1] == EOS
    assert (enc.ids[1 : enc.length - 1] == 2368).all()


def test_equivalent_unicode_forms_tokenize_alike(tokenizer):
    precomposed = tokenizer.encode("caf\u00e9 cr\u00e8me br\u00fbl\u00e9e")
    combining = tokenizer.encode("cafe\u0301 cre\u0300me bru\u0302le\u0301e")
    assert np.array_equal(precomposed.ids, combining.ids)  # NFC in the normalizer
    assert np.array_equal(tokenizer.encode("a\u00a0photo\tof\n a  cat").ids, tokenizer.encode("a photo of a cat").ids)
    assert np.array_equal(tokenizer.encode("A PHOTO OF A CAT").ids, tokenizer.encode("a photo of a cat").ids)


def test_special_token_strings_in_text_are_special_tokens(tokenizer):
    # As in transformers: a user typing "<|endoftext|>" produces the EOS id mid-sequence.
    enc = tokenizer.encode("<|endoftext|> cat")
    assert enc.ids[:4].tolist() == [BOS, EOS, 2368, EOS] and enc.length == 4


@pytest.mark.parametrize("pad_id", [0, 1, EOS])
def test_pad_id_is_configurable(reference, pad_id):
    tok = ClipTokenizer(TOKENIZER_JSON.read_bytes(), TokenizerConfig(pad_id=pad_id))
    for text in ("", "a photo of a cat", PARAGRAPH):
        ids, mask = reference_ids(reference, text)
        enc = tok.encode(text)
        expected = np.where(np.asarray(mask) == 1, ids, pad_id)
        assert enc.ids.tolist() == expected.tolist()
        # argmax pooling (configs with eos_token_id == 2) lands on the EOS
        assert int(np.argmax(enc.ids)) == enc.length - 1


def test_other_max_length_matches_reference(reference):
    tok = ClipTokenizer(TOKENIZER_JSON.read_bytes(), TokenizerConfig(max_length=16))
    for text in ("a photo of a cat", PARAGRAPH, ""):
        ids, mask = reference_ids(reference, text, max_length=16)
        enc = tok.encode(text)
        assert enc.ids.shape == (16,) and enc.ids.tolist() == ids and enc.length == sum(mask)
    assert tok.encode(PARAGRAPH).truncated


def test_lowercase_flag_for_tokenizers_that_do_not_lowercase(tokenizer):
    spec = json.loads(TOKENIZER_JSON.read_text(encoding="utf-8"))
    norms = spec["normalizer"]["normalizers"]
    spec["normalizer"]["normalizers"] = [n for n in norms if n["type"] != "Lowercase"]
    assert len(spec["normalizer"]["normalizers"]) == len(norms) - 1
    raw = json.dumps(spec)
    cased = ClipTokenizer(raw)
    lowered = ClipTokenizer(raw, TokenizerConfig(lowercase=True))
    text = "A Photo Of A CAT"
    assert not np.array_equal(cased.encode(text).ids, tokenizer.encode(text).ids)
    assert np.array_equal(lowered.encode(text).ids, tokenizer.encode(text).ids)
    assert np.array_equal(lowered.encode_batch([text])[0].ids, tokenizer.encode(text).ids)


def test_bytes_str_and_file_give_the_same_tokenizer(tokenizer):
    raw = TOKENIZER_JSON.read_bytes()
    for tok in (ClipTokenizer(raw), ClipTokenizer(raw.decode("utf-8")), ClipTokenizer(memoryview(raw))):
        assert np.array_equal(tok.encode(PARAGRAPH).ids, tokenizer.encode(PARAGRAPH).ids)
    assert tokenizer.vocab_size == 49408
    assert tokenizer.config == TokenizerConfig()
    assert "pad_id=49407" in repr(tokenizer)


def test_shared_by_threads_equals_serial(tokenizer):
    serial = [tokenizer.encode(t).ids.tolist() for t in CORPUS]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda t: tokenizer.encode(t).ids.tolist(), CORPUS * 4))
    assert threaded == serial * 4


@pytest.mark.parametrize("bad", [None, b"a photo", 42, ["a photo"], np.array(["a"])])
def test_encode_refuses_non_str(tokenizer, bad):
    with pytest.raises(TextInputError, match="text must be a str") as info:
        tokenizer.encode(bad)
    assert isinstance(info.value, TypeError) and isinstance(info.value, EdgeEmbedderError)


def test_numpy_str_is_a_str(tokenizer):
    assert tokenizer.encode(np.str_("a photo of a cat")).ids.tolist() == tokenizer.encode("a photo of a cat").ids.tolist()


@pytest.mark.parametrize("bad, message", [
    ("a photo of a cat", "got a single str; use encode"),
    (b"a photo", "got a single bytes"),
    (7, "sequence of str, got int"),
    (["ok", 3], r"texts\[1\] must be a str, got int"),
])
def test_encode_batch_refuses_bad_input(tokenizer, bad, message):
    with pytest.raises(TextInputError, match=message):
        tokenizer.encode_batch(bad)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_length": 1}, "max_length must be >= 2"),
    ({"max_length": 77.0}, "max_length must be an int"),
    ({"pad_id": -1}, "pad_id must be >= 0"),
    ({"pad_id": True}, "pad_id must be an int"),
    ({"lowercase": "yes"}, "lowercase must be a bool"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(OptionsError, match=message):
        TokenizerConfig(**kwargs)


def test_config_accepts_numpy_ints():
    cfg = TokenizerConfig(max_length=np.int64(77), pad_id=np.int32(0))
    assert type(cfg.max_length) is int and type(cfg.pad_id) is int


@pytest.mark.parametrize("config, message", [
    (TokenizerConfig(pad_id=60000), "pad_id 60000 is outside the tokenizer's vocabulary of 49408"),
    (TokenizerConfig(bos_id=0), r"frames the empty text as \[49406, 49407\], expected \[bos_id, eos_id\] = \[0, 49407\]"),
    (TokenizerConfig(eos_id=2), r"expected \[bos_id, eos_id\] = \[49406, 2\]"),
])
def test_config_must_agree_with_tokenizer_json(config, message):
    with pytest.raises(MetadataError, match=message):
        ClipTokenizer(TOKENIZER_JSON.read_bytes(), config)


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"version": "1.0"}', 12])
def test_garbage_tokenizer_json_is_a_metadata_error(raw):
    with pytest.raises(MetadataError):
        ClipTokenizer(raw)


def test_wrong_config_type_is_an_options_error():
    with pytest.raises(OptionsError, match="config must be a TokenizerConfig"):
        ClipTokenizer(TOKENIZER_JSON.read_bytes(), {"max_length": 77})


def test_missing_tokenizers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` raise ImportError
    with pytest.raises(MissingDependencyError) as info:
        ClipTokenizer(TOKENIZER_JSON.read_bytes())
    err = info.value
    assert isinstance(err, ImportError) and isinstance(err, EdgeEmbedderError)
    assert TEXT_EXTRA_HINT == "pip install 'edge-embedder[text]'" and TEXT_EXTRA_HINT in str(err)
    assert "'tokenizers'" in str(err)


@pytest.mark.slow
def test_imports_do_not_import_tokenizers():
    code = (
        "import sys\n"
        "import edge_embedder\n"
        "assert 'tokenizers' not in sys.modules, 'import edge_embedder imported tokenizers'\n"
        "import edge_embedder.text, edge_embedder.text.tokenizer\n"
        "bad = sorted(m for m in ('tokenizers', 'transformers', 'torch', 'huggingface_hub') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_encoding_is_a_small_value_type(tokenizer):
    enc = tokenizer.encode("a photo of a cat")
    assert isinstance(enc, Encoding)
    with pytest.raises(AttributeError):
        enc.length = 3  # frozen
