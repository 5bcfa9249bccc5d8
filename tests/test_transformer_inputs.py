"""Bad inputs to TinyGPT: each is refused with a message that names it."""

import pytest
import torch

from distill_lessons.transformer import TinyGPT


def small(**kw):
    return TinyGPT(5, context=8, d_model=8, n_heads=2, n_layers=2, **kw)


def test_a_cache_of_the_wrong_model_batch_or_layer_count_is_refused():
    model = small()
    ids = torch.randint(5, (2, 3), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, cache = model(ids, cache=[])
        other = TinyGPT(5, context=8, d_model=16, n_heads=2, n_layers=2)
        _, foreign = other(ids, cache=[])
    token = ids[:, :1]
    bad_caches = [
        cache[:1],  # too few layers
        cache + cache,  # too many layers
        foreign,  # another model's widths
        [(k[:1], v[:1]) for k, v in cache],  # another batch
        [(k, v[:, :, :-1]) for k, v in cache],  # keys and values differ
        [cache[0], (cache[1][0][:, :, :-1], cache[1][1][:, :, :-1])],
        [1, 2],
        {"a": 1},
        5,
    ]
    for bad in bad_caches:
        with pytest.raises(ValueError, match="cache"):
            model(token, cache=bad)
    with torch.no_grad():
        logits, _ = model(token, cache=cache)  # the right cache still works
    assert logits.shape == (2, 1, 5)


def test_the_cached_forward_matches_the_full_forward():
    model = small(seed=1)
    ids = torch.randint(5, (2, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(ids)
        logits, cache = model(ids[:, :2], cache=[])
        steps = [logits]
        for t in range(2, 6):
            logits, cache = model(ids[:, t : t + 1], cache=cache)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full)
