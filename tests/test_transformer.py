"""Tests of distill_lessons.transformer: the TinyGPT and its KV cache."""

import pytest
import torch

from distill_lessons.transformer import TinyGPT

V, C = 11, 16


def small(seed=0, **kw):
    size = {"d_model": 32, "n_layers": 2, "n_heads": 4} | kw
    return TinyGPT(V, context=C, seed=seed, **size).eval()


def ids(batch=3, time=C, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(V, (batch, time), generator=g)


def test_logits_have_one_row_per_position_and_one_column_per_symbol():
    assert small()(ids(3, 7)).shape == (3, 7, V)


def test_parameter_count_matches_the_architecture():
    d, layers = 32, 2
    # embeddings, per block (two layer norms, qkv, projection, 4x MLP),
    # the final layer norm and the head, each weight matrix with a bias
    per_block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d
    per_block += (4 * d * d + 4 * d) + (4 * d * d + d)
    expected = V * d + C * d + layers * per_block + 2 * d + (d * V + V)
    assert small().num_parameters() == expected


def test_changing_a_later_token_leaves_earlier_logits_alone():
    model = small()
    x = ids(2, 12)
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % V
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=1e-6)
    # the changed token is read at position 7, so its logits must move
    assert (a[:, 7] - b[:, 7]).abs().max() > 1e-4


def test_cached_decoding_gives_the_logits_of_a_full_forward():
    model = small(seed=3)
    x = ids(2, 10, seed=1)
    with torch.no_grad():
        full = model(x)  # (2, 10, V)
        logits, cache = model(x[:, :4], cache=[])
        steps = [logits]
        for t in range(4, 10):
            logits, cache = model(x[:, t : t + 1], cache=cache)
            steps.append(logits)
    torch.testing.assert_close(
        torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5
    )
    # one (keys, values) pair per layer, each (batch, heads, time, hd)
    assert len(cache) == 2
    assert cache[0][0].shape == (2, 4, 10, 8)


def test_return_cache_without_a_cache_starts_one():
    model = small()
    with torch.no_grad():
        logits, cache = model(ids(1, 5), return_cache=True)
    assert logits.shape == (1, 5, V) and cache[0][0].shape[2] == 5


def test_the_same_seed_builds_the_same_net():
    a, b, c = small(seed=5), small(seed=5), small(seed=6)
    x = ids(1, 8)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        assert not torch.equal(a(x), c(x))


def test_fresh_weights_follow_pytorchs_default_rules():
    model = small()
    fan_in = model.d_model
    bound = fan_in**-0.5
    head = model.head.weight.detach()
    # Linear layers: uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)], whose
    # standard deviation is bound / sqrt(3).
    assert float(head.abs().max()) <= bound
    assert abs(float(head.std()) - bound / 3**0.5) < 0.25 * bound / 3**0.5
    # Embeddings: unit normal. Layer norms: weight one, bias zero.
    assert 0.8 < float(model.tok.weight.detach().std()) < 1.2
    assert torch.equal(model.ln_f.weight, torch.ones(fan_in))
    assert torch.count_nonzero(model.ln_f.bias) == 0


def test_building_a_model_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    small(seed=3)
    assert torch.equal(torch.get_rng_state(), before)


def test_gradients_flow_to_every_weight():
    model = small().train()
    model(ids(2, 6)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(2, 3), "integer ids"),
        (torch.zeros(6, dtype=torch.long), "2 dimension"),
        (torch.full((1, 3), V), r"ids must lie in \[0, 10\]"),
        (torch.full((1, 3), -1), r"ids must lie in \[0, 10\]"),
        (torch.zeros(1, C + 1, dtype=torch.long), "exceeds context"),
        (torch.zeros(1, 0, dtype=torch.long), "at least one token"),
        ([[1, 2]], "torch.Tensor"),
    ],
)
def test_bad_ids_are_refused_with_a_message(bad, message):
    with pytest.raises(ValueError, match=message):
        small()(bad)


def test_a_cache_takes_one_token_at_a_time_and_stops_at_the_context():
    model = small()
    with torch.no_grad():
        _, cache = model(ids(1, 3), cache=[])
        with pytest.raises(ValueError, match="one token at a time"):
            model(ids(1, 2), cache=cache)
        _, cache = model(ids(1, C - 1), cache=[])
        _, cache = model(ids(1, 1), cache=cache)
        with pytest.raises(ValueError, match="exceeds context"):
            model(ids(1, 1), cache=cache)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"d_model": 30}, "divisible by n_heads"),
        ({"n_layers": 0}, "n_layers"),
        ({"n_heads": 2.0}, "n_heads"),
    ],
)
def test_bad_sizes_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        small(**kw)


def test_a_vocabulary_of_zero_symbols_is_refused():
    with pytest.raises(ValueError, match="vocab_size"):
        TinyGPT(0)
