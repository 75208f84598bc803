"""SigLIP's SentencePiece tokenizer rebuilt for the ``tokenizers`` package: ids equal ``SiglipTokenizer``'s.

Two unigram models are trained offline here with the ``sentencepiece``
trainer (no network): the one ``tiny_siglip`` checkpoints carry (prompt
templates and a word list, ~240 pieces) and a larger one trained on
multilingual text (~800 pieces, so that words split into several pieces
and the segmentation matters). For each, the runtime's tokenizer (the
``tokenizer.json`` the converter packs, read by ``tokenizers`` through
``edge_embedder.text.ClipTokenizer``) must give exactly the ids of
transformers' ``SiglipTokenizer(text, padding="max_length", truncation=True,
max_length=64)`` on the committed corpus, on captions with punctuation,
capitals, digits and non-Latin scripts, on special-token strings and on
random strings. The differences the converter's docstring lists are checked
to be exactly of their documented kind.
"""

from __future__ import annotations

import json
import random
import string

import numpy as np
import pytest

pytest.importorskip("sentencepiece")
pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

from edge_embedder.text import ClipTokenizer, TokenizerConfig  # noqa: E402

from .conftest import FIXTURES  # noqa: E402

MAX_LENGTH = 64  # the released checkpoints' text length (and the pipeline's)
CORPUS = json.loads((FIXTURES / "text_corpus.json").read_text(encoding="utf-8"))

#: Captions with punctuation, capitals, digits, whitespace and non-Latin text (besides the corpus).
CAPTIONS = [
    "A Photo Of A Cat.", "THIS IS A PHOTO OF A DOG!!!", "a photo of 3 cats and 12 dogs", "Photo #42: the car (red).",
    "it's a dog's life", "e-mail: someone@example.com", "100% of 2,500 people", "version 1.2.3-beta",
    "Ein Foto von einer Katze auf der Straße", "une photo d'un chat sur la fenêtre", "una foto de un perro",
    "Η φωτογραφία μιας ΓΑΤΑΣ", "ΟΔΟΣ ΣΑΣ", "ΣΑΣ.", "фотография СОБАКИ", "一只猫在桌子上睡觉", "窓のそばの猫の写真",
    "고양이가 창가에서 자고 있다", "صورة كلب", "תמונה של חתול", "कुत्ते की तस्वीर", "Ảnh con mèo", "İSTANBUL'da bir kedi",
    "a\u00a0photo\u2009of\u202fa cat", "\ufeffa photo of a cat", "a photo\u200b of a cat", "a▁photo▁of", "  ▁ cat",
    "tab\tand\nnewline", "\x07bell and \x00nul", "CAFÉ DÉJÀ VU", "e\u0301te\u0301 (decomposed)", "½ cup, ¼ inch, ①",
    # special-token strings in the text: transformers matches them as the special tokens
    "a photo of a cat </s>", "a photo of a cat</s>", "</s> a photo", "a </s> photo", "</s>", "<unk>", "<unk> cat",
    "a photo <pad> of", "hello </s> world </s>",
]


def _train(path, sentences, vocab_size):
    import io

    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=buf, vocab_size=vocab_size,
                                   model_type="unigram", hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2,
                                   bos_id=-1, character_coverage=1.0, num_threads=1, minloglevel=2)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture(scope="module", params=["tiny", "multilingual"])
def tokenizers_pair(request, tmp_path_factory):
    """(SiglipTokenizer, the runtime's ClipTokenizer from the packed tokenizer.json) for one trained model."""
    from edge_embedder.convert.sentencepiece_tokenizer import siglip_tokenizer_json
    from edge_embedder.convert.tiny_siglip import train_sentencepiece, training_sentences
    from transformers import SiglipTokenizer

    folder = tmp_path_factory.mktemp(f"spm_{request.param}")
    if request.param == "tiny":
        path = train_sentencepiece(folder / "spiece.model")
    else:
        rng = random.Random(1)
        text = CORPUS + CAPTIONS + training_sentences(2000, seed=1)
        words = " ".join(text).split()
        text += [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(3000)]
        path = _train(folder / "spiece.model", text, 1500)
    slow = SiglipTokenizer(vocab_file=str(path), model_input_names=["input_ids"])
    config = TokenizerConfig(max_length=MAX_LENGTH, bos_id=None, eos_id=slow.eos_token_id, pad_id=slow.pad_token_id,
                             eos_if_absent=True)
    fast = ClipTokenizer(siglip_tokenizer_json(path), config)
    return request.param, slow, fast


def _slow_ids(slow, text):
    return slow(text, padding="max_length", truncation=True, max_length=MAX_LENGTH)["input_ids"]


#: Known differences (converters/sentencepiece_tokenizer.py's docstring, (a)), per model: text -> kind.
#: The corpus line "\u1e9b\u0323 ..." (long s with dot above, combining dot below): SentencePiece maps the
#: long s and keeps the mark, tokenizers' Precompiled step replaces the whole grapheme (mark dropped).
_LONG_S = next(t for t in CORPUS if t.startswith("\u1e9b\u0323"))
KNOWN = {
    "multilingual": {_LONG_S: "combining mark after a normalized character"},
    "tiny": {},  # the tiny model has no piece for the mark: both give <unk>
}


def _differences(slow, fast, texts):
    return [t for t in texts if _slow_ids(slow, t) != fast.encode(t).ids.tolist()]


def test_the_trained_models_are_not_trivial(tokenizers_pair):
    name, slow, fast = tokenizers_pair
    assert len(slow) > (600 if name == "multilingual" else 200)
    multi = [p for p in slow.convert_ids_to_tokens(range(len(slow))) if len(p) > 2]
    assert len(multi) > 100, "the model needs multi-character pieces for the segmentation to matter"


def test_corpus_and_captions_give_the_same_ids(tokenizers_pair):
    name, slow, fast = tokenizers_pair
    texts = [t for t in CORPUS + CAPTIONS if t not in KNOWN[name]]
    assert _differences(slow, fast, texts) == []


def test_framing_truncation_and_padding(tokenizers_pair):
    name, slow, fast = tokenizers_pair
    eos, pad = slow.eos_token_id, slow.pad_token_id
    empty = fast.encode("")
    assert empty.ids.tolist() == [eos] + [pad] * (MAX_LENGTH - 1) and empty.length == 1 and not empty.truncated
    long = fast.encode("a photo of a cat " * 40)
    assert long.truncated and long.length == MAX_LENGTH and long.ids[-1] == eos
    assert long.ids.tolist() == _slow_ids(slow, "a photo of a cat " * 40)
    # the text's own </s> ends it: no second one (transformers' SentencePiece tokenizers)
    own = fast.encode("a cat </s>")
    assert own.ids[own.length - 1] == eos and own.ids[own.length - 2] != eos
    assert fast.encode_batch(CAPTIONS[:5])[3].ids.tolist() == fast.encode(CAPTIONS[3]).ids.tolist()


@pytest.mark.parametrize("seed", [0, 1])
def test_random_strings_give_the_same_ids(tokenizers_pair, seed):
    """Random mixes of letters, capitals, digits, punctuation, whitespace, accents, CJK, Greek, emoji."""
    name, slow, fast = tokenizers_pair
    pools = [string.ascii_lowercase, string.ascii_uppercase, string.digits, string.punctuation, " \t\n\u00a0\u3000",
             "äöüßéèçñÅ", "猫が寝ている東京一只", "αβγΣσςΟΔ", "абвгдЖ", "🐱🚗👍🏽", "\u200b\ufeff\x07▁"]
    rng = random.Random(seed)
    texts = ["".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(0, 30))) for _ in range(1500)]
    diff = _differences(slow, fast, texts)
    assert diff == [], diff[:5]


def test_known_differences_are_of_their_documented_kind(tokenizers_pair):
    """Each listed difference is what the docstring says, nothing else."""
    name, slow, fast = tokenizers_pair
    for text in KNOWN[name]:
        a, b = _slow_ids(slow, text), fast.encode(text).ids.tolist()
        assert a != b, f"{text!r} is no longer different: update the list and the converter's docstring"
        # tokenizers' Precompiled step drops the combining mark: without it, the ids agree, and the
        # slow tokenizer's ids are ours plus the mark's piece
        bare = text.replace("\u0323", "")
        assert _slow_ids(slow, bare) == b
        mark = slow.convert_tokens_to_ids("\u0323")
        assert a.count(mark) == 1 and [i for i in a if i != mark] + [slow.pad_token_id] == b


def test_no_sentencepiece_at_run_time(tokenizers_pair):
    import subprocess
    import sys

    name, slow, fast = tokenizers_pair
    from edge_embedder.convert.sentencepiece_tokenizer import siglip_tokenizer_json

    data = siglip_tokenizer_json(slow.vocab_file)
    code = (
        "import sys, json\n"
        "sys.modules['sentencepiece'] = None\n"  # importing it fails
        "from edge_embedder.text import ClipTokenizer, TokenizerConfig\n"
        "t = ClipTokenizer(sys.stdin.buffer.read(), TokenizerConfig(max_length=64, bos_id=None, eos_id=1, pad_id=1,"
        " eos_if_absent=True))\n"
        "print(json.dumps(t.encode('Ein FOTO von 3 Katzen!').ids.tolist()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=True, timeout=120)
    assert json.loads(out.stdout) == _slow_ids(slow, "Ein FOTO von 3 Katzen!")


def test_unsupported_models_are_refused(tmp_path):
    import io

    import sentencepiece as spm
    from edge_embedder.convert.errors import CheckpointError
    from edge_embedder.convert.sentencepiece_tokenizer import siglip_tokenizer_json
    from edge_embedder.convert.tiny_siglip import training_sentences

    for name, extra, what in (("bytes", {"byte_fallback": True}, "byte fallback"),
                              ("user", {"user_defined_symbols": ["<img>"]}, "user-defined pieces"),
                              ("bpe", {"model_type": "bpe"}, "only unigram")):
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(training_sentences(500)), model_writer=buf,
                                       vocab_size=600, hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                       num_threads=1, minloglevel=2, **{"model_type": "unigram", **extra})
        path = tmp_path / f"{name}.model"
        path.write_bytes(buf.getvalue())
        with pytest.raises(CheckpointError, match=what):
            siglip_tokenizer_json(path)
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a SentencePiece model"):
        siglip_tokenizer_json(tmp_path / "junk.model")


def test_ids_are_int32_rows(tokenizers_pair):
    name, slow, fast = tokenizers_pair
    enc = fast.encode("a photo of a cat")
    assert enc.ids.dtype == np.int32 and enc.ids.shape == (MAX_LENGTH,)
    assert "eos_if_absent=True" in repr(fast) and "bos_id=None" in repr(fast)
