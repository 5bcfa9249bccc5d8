"""Tests of generation with temperature, top-k and a key-value cache."""

import math

import pytest
import torch
from torch import nn

from distill_lessons.sampling import generate, teacher_dataset
from distill_lessons.transformer import TinyGPT


class FixedNextToken(nn.Module):
    """Logits that ignore the input: the same distribution at every step."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.as_tensor(logits, dtype=torch.float32)

    def forward(self, ids, cache=None):
        out = self.logits.expand(ids.shape[0], ids.shape[1], -1)
        return (out, []) if cache is not None else out


def small_gpt(seed=0):
    return TinyGPT(7, context=16, d_model=16, n_layers=2, n_heads=2, seed=seed)


def test_sampling_repeats_with_the_same_seed():
    model = small_gpt()
    prompts = torch.randint(
        0, 7, (5, 3), generator=torch.Generator().manual_seed(0)
    )
    a = generate(model, prompts, 8, seed=11)
    b = generate(model, prompts, 8, seed=11)
    c = generate(model, prompts, 8, seed=12)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_generation_with_the_cache_equals_generation_without_it():
    model = small_gpt(seed=3)
    prompts = torch.randint(
        0, 7, (6, 4), generator=torch.Generator().manual_seed(1)
    )
    for greedy in (True, False):
        with_cache = generate(model, prompts, 10, greedy=greedy, seed=5)
        without = generate(
            model, prompts, 10, greedy=greedy, seed=5, use_cache=False
        )
        assert torch.equal(with_cache, without)


def test_greedy_takes_the_most_likely_token():
    model = FixedNextToken([0.0, 3.0, 1.0])
    out = generate(model, torch.zeros(4, 2).long(), 5, greedy=True)
    assert (out == 1).all()


def test_top_1_sampling_is_greedy():
    model = FixedNextToken([0.5, 0.1, 2.0, 1.9])
    out = generate(model, torch.zeros(50, 1).long(), 3, top_k=1, seed=0)
    assert (out == 2).all()


def test_top_k_never_samples_outside_the_k_most_likely_tokens():
    model = FixedNextToken([0.0, 1.0, 2.0, 3.0, 4.0])
    out = generate(model, torch.zeros(400, 1).long(), 5, top_k=2, seed=0)
    assert set(out.unique().tolist()) == {3, 4}


def test_sample_frequencies_follow_the_tempered_softmax():
    # Logits (0, ln 3): probabilities 1/4 and 3/4 at temperature 1; at
    # temperature 2 the logits halve, giving 1 / (1 + sqrt 3) for token 0.
    model = FixedNextToken([0.0, math.log(3.0)])
    prompts = torch.zeros(20000, 1).long()
    share_t1 = (generate(model, prompts, 1, seed=0) == 0).float().mean()
    share_t2 = (
        (generate(model, prompts, 1, temperature=2.0, seed=0) == 0)
        .float()
        .mean()
    )
    # Binomial standard deviation at n=20000 is about 0.003.
    assert abs(float(share_t1) - 0.25) < 0.015
    assert abs(float(share_t2) - 1 / (1 + math.sqrt(3))) < 0.015


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_a_temperature_of_zero_or_less_is_refused(temperature):
    with pytest.raises(ValueError, match="temperature must be"):
        generate(
            small_gpt(), torch.zeros(1, 2).long(), 3, temperature=temperature
        )


def test_a_top_k_of_zero_is_refused():
    with pytest.raises(ValueError, match="top_k must be"):
        generate(small_gpt(), torch.zeros(1, 2).long(), 3, top_k=0)


def test_prompts_must_be_a_batch_of_ids():
    with pytest.raises(ValueError, match="prompts must have 2 dimension"):
        generate(small_gpt(), torch.zeros(4).long(), 3)


def test_generation_leaves_the_training_mode_as_it_was():
    model = small_gpt()
    model.train()
    generate(model, torch.zeros(2, 2).long(), 2)
    assert model.training


def test_the_teacher_dataset_keeps_only_what_the_checker_accepts():
    model = FixedNextToken([0.0, 0.0, 0.0])  # uniform over three tokens
    prompts = torch.arange(300).remainder(3)[:, None]  # (300, 1)

    def accept(completions):
        return completions[:, 0] == 2

    seqs, kept = teacher_dataset(
        model, prompts, 2, accept=accept, greedy=False, seed=0, batch_size=64
    )
    assert seqs.shape == (int(kept.sum()), 3)
    assert (seqs[:, 1] == 2).all()
    assert torch.equal(seqs[:, 0], prompts[kept, 0])
    # A third of uniform draws is a 2: 100 expected, sd about 8.
    assert 60 < int(kept.sum()) < 140
