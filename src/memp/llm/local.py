"""The embedded local LLM: a GGUF model run in-process by llama.cpp (llama-cpp-python).

- The chat template is the one stored in the GGUF (``tokenizer.chat_template``), rendered
  with llama-cpp-python's Jinja2 formatter; ChatML is the fallback.
- Greedy by default (temperature 0) and seedable: the same prompt gives the same answer;
  a seeded sampled call re-evaluates its whole prompt so it is bit-reproducible.
- One ``Llama`` object is kept for the backend's lifetime. llama.cpp keeps the KV cache
  of the previous prompt, and ``Llama.generate`` re-evaluates only the tokens after the
  longest common prefix, so the calls of an episode (same system prompt, growing
  history) pay only for their new tokens. ``reuse_prefix=False`` turns that off (bench).
- Prompts whose system message is long (a worked example, retrieved procedures) also
  keep a snapshot of its KV cache (``prefix_states`` of them, least recently used
  dropped): an episode whose system part was seen before, though not by the call just
  before it (interleaved task types), loads it in milliseconds instead of re-evaluating
  ~1,000 tokens. A snapshot is the sequence's KV cells only (~28 MB per 1,000 tokens of
  the 1.5B model); the logits after it are the same as evaluating the prefix.
- ``choices=[...]``: the answer is exactly one of them. Greedy calls decode over a
  token trie of the choices (fast, stops once the choice is determined); sampled calls,
  or ``choice_method="grammar"``, compile the choices into a GBNF grammar for llama.cpp.
"""

from __future__ import annotations

import atexit
import copy
import ctypes
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

from memp.errors import BackendError, InvalidInput, MissingDependency
from memp.llm.backend import LLMBackend, Request
from memp.llm.base import Completion, Message
from memp.llm.cache import CompletionCache
from memp.llm.choices import choices_gbnf
from memp.llm.plugins import Shared, Spec

_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as e:
        raise MissingDependency(
            "llama-cpp-python", extra="local", why="it runs the local GGUF model"
        ) from e
    return llama_cpp


def _shared(a: Any, b: list[int]) -> int:
    """How many leading items ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@lru_cache(maxsize=64)
def _grammar(choices: tuple[str, ...]) -> Any:
    llama_cpp = _import_llama()
    return llama_cpp.LlamaGrammar.from_string(choices_gbnf(choices), verbose=False)


class LocalLLM(LLMBackend):
    """A GGUF chat model run by llama.cpp in this process."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        name: str | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        reuse_prefix: bool = True,
        choice_method: str = "trie",
        prefix_states: int = 8,
        cache: CompletionCache | None = None,
        cache_sampled: bool = False,
        verbose: bool = False,
    ) -> None:
        super().__init__(cache=cache, cache_sampled=cache_sampled)
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise InvalidInput(
                f"GGUF model file {path} does not exist; pass a path to a .gguf file"
            )
        llama_cpp = _import_llama()
        self.model_path = path
        self.name = name or f"gguf:{path.name}"
        self.seed = seed
        self.reuse_prefix = reuse_prefix
        if choice_method not in {"trie", "grammar"}:
            raise InvalidInput(f"choice_method must be 'trie' or 'grammar', got {choice_method!r}")
        self.choice_method = choice_method
        self.prefix_states = prefix_states
        self._states: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        # Default: all cores. Several model processes sharing the cores (parallel
        # episode workers) should set MEMP_LLM_THREADS so that threads x processes
        # <= cores: llama.cpp's threads spin at barriers and collapse when oversubscribed.
        env_threads = os.environ.get("MEMP_LLM_THREADS", "").strip()
        if not n_threads and env_threads:
            if not env_threads.isdigit() or int(env_threads) < 1:
                raise InvalidInput(
                    f"MEMP_LLM_THREADS must be a positive integer, got {env_threads!r}"
                )
            n_threads = int(env_threads)
        self.n_threads = n_threads or os.cpu_count() or 1
        self._lock = threading.Lock()
        st = path.stat()
        self._identity = f"{self.name}|{path.name}|{st.st_size}"
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_batch=n_batch,
                seed=seed,
                verbose=verbose,
            )
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"llama.cpp could not load {path}: {e}") from e
        # Free the model before interpreter teardown; llama.cpp's own finaliser fails
        # noisily once module globals are gone.
        atexit.register(self._llm.close)
        self.n_ctx = self._llm.n_ctx()
        meta = self._llm.metadata or {}
        template = meta.get("tokenizer.chat_template") or _CHATML
        model = self._llm._model
        eos = model.token_get_text(self._llm.token_eos()) if self._llm.token_eos() >= 0 else ""
        bos = model.token_get_text(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
        self._eos_text = eos
        self._add_bos = bool(model.add_bos_token())
        self._bos_text = bos
        self._formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=eos, bos_token=bos
        )

    @property
    def identity(self) -> str:
        return self._identity

    def render(self, messages: list[Message]) -> str:
        """The prompt text the chat template makes of ``messages`` (ends with the assistant turn)."""
        return self._formatter(messages=list(messages)).prompt  # type: ignore[arg-type]

    def tokenize(self, text: str) -> list[int]:
        add_bos = self._add_bos and not (self._bos_text and text.startswith(self._bos_text))
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def reset(self) -> None:
        """Forget the KV cache (the next call evaluates its whole prompt)."""
        with self._lock:
            self._llm.reset()

    def _generate(self, request: Request) -> Completion:
        messages, max_tokens, choices = request.messages, request.max_tokens, request.choices
        temperature, seed = request.temperature, request.seed
        tokens = self.tokenize(self.render(messages))
        if choices:
            # Room for the longest choice, whatever max_tokens the caller guessed.
            longest = max(self.count_tokens(c) for c in choices)
            max_tokens = max(max_tokens, longest + 2)
        if len(tokens) + max_tokens > self.n_ctx:
            raise BackendError(
                f"the prompt has {len(tokens)} tokens and {max_tokens} more were asked for, "
                f"but the context holds {self.n_ctx}: shorten the prompt (fewer or shorter "
                f"retrieved procedures, a shorter history) or load the model with a larger n_ctx"
            )
        boundary = self._system_end(messages, tokens)
        if choices and temperature == 0 and self.choice_method == "trie":
            with self._lock:
                return self._choose(tokens, choices, boundary)
        grammar = _grammar(tuple(choices)) if choices else None
        stops = list(request.stop)
        if self._eos_text and self._eos_text not in stops:
            stops.append(self._eos_text)
        with self._lock:
            # Seeded sampling must be bit-reproducible: evaluating only a suffix (or
            # replaying one token) changes the logits at rounding level, which can flip
            # a sampled token. Greedy decoding keeps the prefix cache.
            if not self.reuse_prefix or (temperature > 0 and seed is not None):
                self._llm.reset()
                warmed = 0
            else:
                warmed = self._warm(tokens, boundary)
            self.last_prompt_tokens_evaluated = warmed + self._evaluated(tokens)
            try:
                out = self._llm.create_completion(
                    prompt=tokens,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    top_k=40 if temperature > 0 else 1,
                    top_p=0.95 if temperature > 0 else 1.0,
                    min_p=0.05 if temperature > 0 else 0.0,
                    repeat_penalty=1.0,
                    stop=stops,
                    seed=self.seed if seed is None else seed,
                    grammar=grammar,
                )
            except (ValueError, RuntimeError) as e:
                raise BackendError(f"llama.cpp failed on {self.name}: {e}") from e
        text = out["choices"][0]["text"]  # type: ignore[index]
        usage = out["usage"]  # type: ignore[index]
        return Completion(
            # Off the choices only when generation was cut short.
            text=self.chosen(text.strip(), request) if choices else text,
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage["completion_tokens"]),
            model=self.name,
        )

    def _choose(self, tokens: list[int], choices: list[str], boundary: int = 0) -> Completion:
        """Greedy decoding restricted to a token trie of the choices.

        Same answer as greedy decoding under the choices grammar, but each step only
        compares the logits of the few tokens that continue some choice (no grammar
        pass over the whole vocabulary), and decoding stops as soon as the prefix
        identifies a single choice: "take apple 1 from countertop 1" may cost one
        decoded token.
        """
        import numpy as np

        llm = self._llm
        end = llm.token_eos()  # stands for "the answer ends here"
        seqs = [
            self._llm.tokenize(c.encode("utf-8"), add_bos=False, special=False) for c in choices
        ]
        self.last_prompt_tokens_evaluated = self._eval_prompt(tokens, boundary)
        n_vocab = llm.n_vocab()
        alive = list(range(len(seqs)))
        pos = 0
        while len(alive) > 1:
            nxt = {seqs[i][pos] if pos < len(seqs[i]) else end for i in alive}
            logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,))
            best = max(nxt, key=lambda t: float(logits[t]))
            if best == end:
                alive = [i for i in alive if len(seqs[i]) == pos]
                break
            alive = [i for i in alive if pos < len(seqs[i]) and seqs[i][pos] == best]
            pos += 1
            if len(alive) > 1:
                # Tokens every remaining choice shares are forced: one batched call
                # evaluates them all ("go to" after "go"), not one call per token.
                forced = [best]
                while (
                    all(pos < len(seqs[i]) for i in alive)
                    and len({seqs[i][pos] for i in alive}) == 1
                ):
                    forced.append(seqs[alive[0]][pos])
                    pos += 1
                llm.eval(forced)
        chosen = alive[0]
        return Completion(
            text=choices[chosen],
            prompt_tokens=len(tokens),
            completion_tokens=max(1, len(seqs[chosen])),
            model=self.name,
        )

    def _eval_prompt(self, tokens: list[int], boundary: int = 0) -> int:
        """Evaluate the prompt, reusing the KV cache of the longest common prefix.

        Returns how many tokens were evaluated. Mirrors ``Llama.generate``'s reuse rule:
        the last prompt token is always evaluated, since its logits are needed.
        """
        warmed = self._warm(tokens, boundary) if self.reuse_prefix else 0
        prefix = 0
        if self.reuse_prefix and self._llm.n_tokens > 0:
            prefix = min(self._common(tokens), len(tokens) - 1)
        prefix = self._keep(prefix)
        self._llm.eval(tokens[prefix:])
        return warmed + len(tokens) - prefix

    def _common(self, tokens: list[int]) -> int:
        """How many leading ``tokens`` the KV cache already holds."""
        return _shared(self._llm._input_ids[: self._llm.n_tokens], tokens)

    def _keep(self, prefix: int) -> int:
        """Drop the KV cache after its first ``prefix`` tokens (all of it where that
        fails); returns how many it still holds."""
        llm = self._llm
        if prefix > 0 and llm._ctx.kv_cache_seq_rm(-1, prefix, -1):
            llm.n_tokens = prefix
            return prefix
        llm.reset()
        return 0

    def _system_end(self, messages: list[Message], tokens: list[int]) -> int:
        """Where the system message's tokens end in ``tokens`` (0: no snapshot for it).

        Read off the template: the prompt of the system message and an empty user turn
        shares exactly the system part (and the user turn's opening) with the prompt.
        """
        if not self.prefix_states or len(messages) < 2 or messages[0].get("role") != "system":
            return 0
        probe = self.tokenize(self.render([messages[0], {"role": "user", "content": ""}]))
        n = _shared(probe, tokens)
        return n if 256 <= n < len(tokens) else 0

    def _warm(self, tokens: list[int], boundary: int) -> int:
        """Make the KV cache hold ``tokens[:boundary]``: from a snapshot, or by evaluating
        it and keeping one. Returns the tokens evaluated (0 when nothing was)."""
        common = self._common(tokens) if boundary else 0
        if not boundary or common >= boundary:
            return 0
        llama_cpp = _import_llama()
        llm, key = self._llm, tuple(tokens[:boundary])
        ctx = llm._ctx.ctx
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            if llama_cpp.llama_state_seq_set_data(ctx, state, len(state), 0) == len(state):
                llm.input_ids[:boundary] = key
                llm.n_tokens = boundary
                return 0
            # did not fit (should not happen): the cache is empty now, evaluate instead
            self._states.pop(key)
            llm.n_tokens = common = 0
        prefix = self._keep(min(common, boundary))
        llm.eval(tokens[prefix:boundary])
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0) == size:
            self._states[key] = buf
            while len(self._states) > self.prefix_states:
                self._states.popitem(last=False)
        return boundary - prefix

    def _evaluated(self, tokens: list[int]) -> int:
        """How many prompt tokens llama.cpp will evaluate, given what its KV cache holds."""
        if self._llm.n_tokens == 0:
            return len(tokens)
        prefix = self._common(tokens)
        if prefix == len(tokens):
            prefix -= 1  # llama-cpp-python replays one token to refresh the logits
        return len(tokens) - max(prefix, 0)

    def close(self) -> None:
        getattr(self, "_states", {}).clear()
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()


# Loading costs seconds and ~1-2 GB: one instance per (file, options).
_LOADED: Shared[LocalLLM] = Shared()


def build(spec: Spec, cache: CompletionCache | None, **options: Any) -> LocalLLM:
    """The LLM of a ``local``/``local:fast`` (bundled) or ``<path>.gguf`` spec."""
    _import_llama()  # the missing runtime is the first thing to report
    if spec.kind == "local":
        from memp.llm.weights import ensure_model

        path = ensure_model(spec.model)
        name = f"local:{spec.model}-q4_k_m"
    else:
        path = Path(spec.model).expanduser()
        if not path.is_file():
            raise InvalidInput(f"GGUF model file {path} does not exist")
        name = f"gguf:{path.name}"
    key = (str(path.resolve()), tuple(sorted(options.items())))
    base = _LOADED.get(key, lambda: LocalLLM(path, name=name, **options))
    if cache is None and base.cache is None:
        return base
    # Share the loaded weights (and their lock); give this caller its own cache setting.
    view = copy.copy(base)
    view.cache = cache
    return view
