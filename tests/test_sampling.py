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


def test_a_prompt_and_n_new_beyond_the_context_are_refused_up_front():
    model = small_gpt()  # context 16
    model.train()
    # 10 prompt tokens + 8 new read 10 + 7 = 17 positions > 16
    with pytest.raises(ValueError, match="n_new=8 .* context 16"):
        generate(model, torch.zeros(2, 10).long(), 8)
    assert model.training
    # 10 + 7 new read exactly 16 positions: allowed
    assert generate(model, torch.zeros(2, 10).long(), 7).shape == (2, 7)


def test_the_training_mode_is_restored_when_generation_fails():
    class Fails(FixedNextToken):
        def forward(self, ids, cache=None):
            raise RuntimeError("broken model")

    model = Fails([0.0, 1.0])
    model.train()
    with pytest.raises(RuntimeError, match="broken model"):
        generate(model, torch.zeros(2, 2).long(), 3)
    assert model.training


def test_a_temperature_that_overflows_the_logits_is_refused():
    model = FixedNextToken([0.0, 3.0])
    with pytest.raises(ValueError, match="temperature=1e-45 is too small"):
        generate(model, torch.zeros(2, 1).long(), 2, temperature=1e-45)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("greedy", [True, False])
def test_logits_that_are_not_finite_are_refused(bad, greedy):
    model = FixedNextToken([bad, 1.0, 0.0])
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        generate(model, torch.zeros(2, 1).long(), 2, greedy=greedy)


def test_a_logit_of_minus_infinity_is_a_token_never_drawn():
    model = FixedNextToken([float("-inf"), 0.0])
    out = generate(model, torch.zeros(50, 1).long(), 2, seed=0)
    assert (out == 1).all()


def test_a_model_without_a_cache_asks_for_use_cache_false():
    from distill_lessons.models import RNNPredictor

    model = RNNPredictor(5)
    with pytest.raises(ValueError, match="pass use_cache=False"):
        generate(model, torch.zeros(2, 3).long(), 2)
    assert generate(
        model, torch.zeros(2, 3).long(), 2, use_cache=False
    ).shape == (
        2,
        2,
    )


def test_the_teacher_dataset_refuses_no_prompts():
    model = FixedNextToken([0.0, 1.0])
    with pytest.raises(ValueError, match="prompts must hold at least one"):
        teacher_dataset(model, torch.zeros(0, 2).long(), 2)


@pytest.mark.parametrize(
    "verdict", [lambda c: c[:, 0], lambda c: c[:, 0].float() * 0.5]
)
def test_accept_must_return_bools(verdict):
    model = FixedNextToken([0.0, 1.0])
    with pytest.raises(ValueError, match="accept must return bools"):
        teacher_dataset(model, torch.zeros(4, 1).long(), 2, accept=verdict)


def test_accept_may_return_a_list_of_bools():
    model = FixedNextToken([0.0, 1.0])  # greedy: always token 1
    seqs, kept = teacher_dataset(
        model,
        torch.zeros(3, 1).long(),
        2,
        accept=lambda c: [True, False, True],
    )
    assert kept.tolist() == [True, False, True]
    assert seqs.tolist() == [[0, 1, 1], [0, 1, 1]]


def test_no_prompts_give_no_tokens_and_empty_prompts_are_refused():
    model = small_gpt()
    for greedy in (True, False):
        out = generate(model, torch.zeros(0, 3).long(), 2, greedy=greedy)
        assert out.shape == (0, 2)
    with pytest.raises(ValueError, match="prompts must hold at least one"):
        generate(model, torch.zeros(2, 0).long(), 2)
