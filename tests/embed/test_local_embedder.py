"""The real local embedder (all-MiniLM-L6-v2 int8 ONNX) and its shipped tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer

from memp.embed.local import TOKENIZER_PATH


def test_paraphrase_ranks_above_unrelated_task(local_embedder):
    query = "put a clean apple in the fridge"
    candidates = [
        "heat some egg in the microwave",
        "place a washed apple in the refrigerator",
        "find two pillows and put them on the sofa",
    ]
    v = local_embedder.embed([query, *candidates])
    scores = v[1:] @ v[0]
    assert int(np.argmax(scores)) == 1
    assert scores[1] > 0.8 and scores[0] < 0.4


def test_vectors_are_unit_float32_and_batching_does_not_change_them(local_embedder):
    texts = ["go to cabinet 3", "a much longer sentence about " + "washing dishes " * 40, "", "x"]
    batch = local_embedder.embed(texts)
    assert batch.shape == (4, local_embedder.dim) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([local_embedder.embed([t]) for t in texts])
    # Padding to the longest text of a batch must not leak into the mean pooling.
    assert np.allclose(batch, one_by_one, atol=1e-4)
    assert local_embedder.embed([]).shape == (0, local_embedder.dim)
    with pytest.raises(TypeError, match="single string"):
        local_embedder.embed("go to cabinet 3")


def test_shipped_tokenizer_gives_the_reference_bert_uncased_ids():
    tok = Tokenizer.from_file(str(TOKENIZER_PATH))
    tok.no_padding()
    # Reference ids of all-MiniLM-L6-v2's tokenizer (BERT base uncased WordPiece).
    assert tok.encode("Put a clean apple in the fridge.").ids == [
        101, 2404, 1037, 4550, 6207, 1999, 1996, 16716, 1012, 102,
    ]
    assert tok.encode("go to cabinet 1").ids == [101, 2175, 2000, 5239, 1015, 102]
    assert tok.encode("Héllo, WORLD!! naïve café").ids == [
        101, 7592, 1010, 2088, 999, 999, 15743, 7668, 102,
    ]
