"""A tiny causal transformer (GPT-style) for Part III of the book.

Chapter 6 introduces :class:`TinyGPT`; chapters 7 and 8 sample from it with
a key-value cache (:mod:`distill_lessons.sampling`). Attention is PyTorch's
own ``F.scaled_dot_product_attention`` with ``is_causal=True``, which on
these CPUs trains several times faster than an explicit mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distill_lessons._checks import generator, long_tensor, positive_int

__all__ = ["TinyGPT", "KVCache"]

KVCache = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, the keys and values seen so far: ``(batch, heads, time, hd)``."""


class _Block(nn.Module):
    """Pre-norm block: attention then a 4x MLP, each with a residual."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model),
            nn.GELU(),
            nn.Linear(4 * d_model, d_model),
        )

    def forward(self, x, past=None):
        batch, time, d = x.shape
        hd = d // self.n_heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (
            z.view(batch, time, self.n_heads, hd).transpose(1, 2)
            for z in (q, k, v)
        )  # each (batch, heads, time, hd)

        if past is not None:
            # One new token may attend to every cached key, so no mask is
            # needed; a whole prompt is read without a cache, causally.
            if time != 1:
                raise ValueError(
                    "a cached forward reads one token at a time; got "
                    f"{time} new tokens"
                )
            k = torch.cat([past[0], k], dim=2)  # (batch, heads, past+1, hd)
            v = torch.cat([past[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=past is None)
        y = y.transpose(1, 2).reshape(batch, time, d)  # (batch, time, d)
        x = x + self.proj(y)
        x = x + self.mlp(self.ln2(x))
        return x, (k, v)


class TinyGPT(nn.Module):
    """A small decoder-only transformer over a character or byte vocabulary.

    Introduced in chapter 6. Token and learned position embeddings, pre-norm
    blocks, a final layer norm and a linear head. ``forward(ids)`` maps ids
    ``(batch, time)`` with ``time <= context`` to logits
    ``(batch, time, vocab)``; position ``t`` predicts token ``t + 1``.

    ``forward(ids, cache=..., return_cache=True)`` supports incremental
    decoding: read the prompt once with an empty cache (``cache=[]``), then
    feed one token at a time with the returned cache.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        context: int = 64,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        seed: int | torch.Generator = 0,
    ):
        super().__init__()
        positive_int("vocab_size", vocab_size)
        positive_int("context", context)
        positive_int("d_model", d_model)
        positive_int("n_layers", n_layers)
        positive_int("n_heads", n_heads)
        if d_model % n_heads:
            raise ValueError(
                f"d_model must be divisible by n_heads; got d_model="
                f"{d_model}, n_heads={n_heads}"
            )
        self.vocab_size = vocab_size
        self.context = context
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads

        # PyTorch's layers draw their first weights from the global
        # generator; fork it, so that building a model never changes the
        # caller's random numbers. reset_parameters then draws from seed.
        with torch.random.fork_rng(devices=[]):
            self.tok = nn.Embedding(vocab_size, d_model)
            self.pos = nn.Embedding(context, d_model)
            self.blocks = nn.ModuleList(
                _Block(d_model, n_heads) for _ in range(n_layers)
            )
            self.ln_f = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, vocab_size)
            self.reset_parameters(seed)

    def reset_parameters(self, seed: int | torch.Generator = 0) -> None:
        """Draw fresh weights from ``seed`` with PyTorch's default rules.

        Embeddings are unit normal, linear layers uniform and scaled by their
        fan-in, layer norms start at one and zero. For the few hundred steps
        a chapter can afford, this starts learning much sooner than the
        small N(0, 0.02) weights of large GPTs (a 4-layer model on the
        standard library's source: 3.6 instead of 4.2 bits per character
        after 50 steps).
        """
        if isinstance(seed, torch.Generator):
            seed = int(torch.randint(2**62, (1,), generator=seed))
        generator(seed)  # refuses what is not a seed, naming it
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in self.modules():
                if module is not self and hasattr(module, "reset_parameters"):
                    module.reset_parameters()

    def num_parameters(self) -> int:
        """The number of trainable weights."""
        return sum(p.numel() for p in self.parameters())

    def _check_cache(self, cache: KVCache, batch: int) -> int:
        """The number of cached positions; raises if ``cache`` is not ours."""
        hd = self.d_model // self.n_heads
        if not isinstance(cache, (list, tuple)) or len(cache) != len(
            self.blocks
        ):
            raise ValueError(
                f"cache must be a list of {len(self.blocks)} (keys, values) "
                "pairs, one per layer, as returned with return_cache=True; "
                f"got {type(cache).__name__} {str(cache)[:40]}"
            )
        start = None
        for layer, pair in enumerate(cache):
            ok = isinstance(pair, (list, tuple)) and len(pair) == 2
            ok = ok and all(isinstance(t, torch.Tensor) for t in pair)
            if ok:
                shapes = {tuple(t.shape) for t in pair}
                shape = shapes.pop() if len(shapes) == 1 else None
                if start is None and shape is not None and len(shape) == 4:
                    start = shape[2]
                ok = shape == (batch, self.n_heads, start, hd)
            if not ok:
                raise ValueError(
                    f"cache layer {layer} must hold keys and values of shape "
                    f"(batch={batch}, heads={self.n_heads}, time, {hd}), the "
                    "same time in every layer; was it made by this model "
                    "for this batch?"
                )
        return start

    def forward(
        self,
        ids: torch.Tensor,
        *,
        cache: KVCache | None = None,
        return_cache: bool = False,
    ):
        """Logits ``(batch, time, vocab)``; with ``return_cache``, also cache.

        ``cache=None`` reads ``ids`` from position 0. ``cache=[]`` does the
        same and starts a cache; a non-empty cache continues from where it
        stopped and accepts one new token per call.
        """
        ids = long_tensor("ids", ids, dims=2)
        batch, time = ids.shape
        start = self._check_cache(cache, batch) if cache else 0
        if time < 1:
            raise ValueError("ids must hold at least one token per row")
        if start + time > self.context:
            raise ValueError(
                f"sequence length {start + time} exceeds context "
                f"{self.context}"
            )
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(
                f"ids must lie in [0, {self.vocab_size - 1}], got values "
                f"from {int(ids.min())} to {int(ids.max())}"
            )

        positions = torch.arange(start, start + time)
        x = self.tok(ids) + self.pos(positions)  # (batch, time, d_model)
        new_cache: KVCache = []
        for i, block in enumerate(self.blocks):
            past = cache[i] if cache else None
            x, kv = block(x, past)
            new_cache.append(kv)
        logits = self.head(self.ln_f(x))  # (batch, time, vocab)
        if return_cache or cache is not None:
            return logits, new_cache
        return logits
