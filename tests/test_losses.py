"""Tests of distill_lessons.losses, with values worked out by hand."""

import math

import pytest
import torch
from torch import nn

from distill_lessons.losses import (
    IGNORE_INDEX,
    forward_kl,
    generalized_jsd,
    hidden_state_mse,
    logit_mse,
    mask_from_labels,
    reverse_kl,
    shift_for_next_token,
    soft_target_loss,
    teacher_topk,
    topk_kl,
)

# Losses that compare two logit tensors of the same shape, with a mask.
PAIR_LOSSES = {
    "forward_kl": forward_kl,
    "reverse_kl": reverse_kl,
    "generalized_jsd": generalized_jsd,
    "generalized_jsd_beta_0.3": lambda s, t, **kw: generalized_jsd(
        s, t, beta=0.3, **kw
    ),
    "logit_mse": logit_mse,
    "hidden_state_mse": hidden_state_mse,
    "soft_target_loss_soft_only": lambda s, t, **kw: soft_target_loss(
        s, t, temperature=2.0, alpha=1.0, **kw
    ),
    "topk_kl": lambda s, t, **kw: topk_kl(s, *teacher_topk(t, 3), **kw),
}


def softmax(xs):
    exps = [math.exp(x) for x in xs]
    return [e / sum(exps) for e in exps]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True) if a)


def logs(probs):
    return torch.tensor([math.log(p) for p in probs])


def random_logits(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * 3


# ----------------------------------------------------------- known values


def test_forward_kl_of_the_three_class_example_is_0_2417_nats():
    p = softmax([2.0, 1.0, 0.1])
    q = softmax([1.0, 1.5, 0.2])
    by_hand = (
        p[0] * math.log(p[0] / q[0])
        + p[1] * math.log(p[1] / q[1])
        + p[2] * math.log(p[2] / q[2])
    )
    assert by_hand == pytest.approx(0.2417, abs=1e-4)
    got = forward_kl(
        torch.tensor([1.0, 1.5, 0.2]), torch.tensor([2.0, 1.0, 0.1])
    )
    assert float(got) == pytest.approx(by_hand, abs=1e-6)


def test_forward_kl_at_temperature_divides_the_logits():
    p = softmax([2.0 / 3, 1.0 / 3, 0.1 / 3])
    q = softmax([1.0 / 3, 1.5 / 3, 0.2 / 3])
    got = forward_kl(
        torch.tensor([1.0, 1.5, 0.2]),
        torch.tensor([2.0, 1.0, 0.1]),
        temperature=3.0,
    )
    assert float(got) == pytest.approx(kl(p, q), abs=1e-6)


def test_two_class_example_forward_reverse_and_jsd():
    teacher, student = logs([0.9, 0.1]), logs([0.5, 0.5])
    forward = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    backward = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    mix = [0.5 * 0.9 + 0.5 * 0.5, 0.5 * 0.1 + 0.5 * 0.5]
    jsd = 0.5 * kl([0.9, 0.1], mix) + 0.5 * kl([0.5, 0.5], mix)
    assert forward == pytest.approx(0.3681, abs=1e-4)
    assert backward == pytest.approx(0.5108, abs=1e-4)
    assert jsd == pytest.approx(0.1017, abs=1e-4)

    assert float(forward_kl(student, teacher)) == pytest.approx(
        forward, abs=1e-6
    )
    assert float(reverse_kl(student, teacher)) == pytest.approx(
        backward, abs=1e-6
    )
    got = generalized_jsd(student, teacher, beta=0.5)
    assert float(got) == pytest.approx(jsd, abs=1e-6)


def test_generalized_jsd_with_an_uneven_mixture_matches_the_definition():
    p, q, beta = [0.9, 0.1], [0.5, 0.5], 0.2
    mix = [beta * a + (1 - beta) * b for a, b in zip(p, q, strict=True)]
    by_hand = beta * kl(p, mix) + (1 - beta) * kl(q, mix)
    got = generalized_jsd(logs(q), logs(p), beta=beta)
    assert float(got) == pytest.approx(by_hand, abs=1e-6)


def test_generalized_jsd_ends_are_forward_and_reverse_kl():
    teacher, student = logs([0.9, 0.1]), logs([0.5, 0.5])
    forward = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    backward = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    at_0 = generalized_jsd(student, teacher, beta=0.0)
    at_1 = generalized_jsd(student, teacher, beta=1.0)
    assert float(at_0) == pytest.approx(forward, abs=1e-6)
    assert float(at_1) == pytest.approx(backward, abs=1e-6)


def test_generalized_jsd_near_the_ends_is_the_weighted_kl():
    # To first order JSD_beta = beta * KL(p || q) near beta = 0, and
    # (1 - beta) * KL(q || p) near beta = 1: the special cases are the
    # limits of JSD divided by the vanishing weight.
    teacher, student = logs([0.9, 0.1]), logs([0.5, 0.5])
    forward = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    backward = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    eps = 1e-3
    near_0 = float(generalized_jsd(student, teacher, beta=eps)) / eps
    near_1 = float(generalized_jsd(student, teacher, beta=1 - eps)) / eps
    assert near_0 == pytest.approx(forward, rel=0.01)
    assert near_1 == pytest.approx(backward, rel=0.01)


def test_ordinary_jsd_never_exceeds_ln_2():
    student = torch.tensor([[30.0, -30.0]])
    teacher = torch.tensor([[-30.0, 30.0]])
    got = float(generalized_jsd(student, teacher, beta=0.5))
    assert got == pytest.approx(math.log(2), abs=1e-5)


def test_soft_target_loss_weights_soft_and_hard_terms_as_documented():
    s, t, temp, alpha = [1.0, 1.5, 0.2], [2.0, 1.0, 0.1], 2.0, 0.7
    soft = kl(softmax([x / temp for x in t]), softmax([x / temp for x in s]))
    hard = -math.log(softmax(s)[2])  # label 2, at temperature 1
    by_hand = alpha * temp**2 * soft + (1 - alpha) * hard
    got = soft_target_loss(
        torch.tensor([s]),
        torch.tensor([t]),
        torch.tensor([2]),
        temperature=temp,
        alpha=alpha,
    )
    assert float(got) == pytest.approx(by_hand, abs=1e-6)


def test_soft_target_loss_with_alpha_0_is_plain_cross_entropy():
    s = [0.3, -1.0, 2.0]
    got = soft_target_loss(
        torch.tensor([s]),
        torch.tensor([[5.0, 0.0, 0.0]]),
        torch.tensor([0]),
        temperature=4.0,
        alpha=0.0,
    )
    assert float(got) == pytest.approx(-math.log(softmax(s)[0]), abs=1e-6)


def test_logit_mse_is_the_mean_squared_logit_difference():
    got = logit_mse(
        torch.tensor([[1.0, 1.5, 0.2]]), torch.tensor([[2.0, 1.0, 0.1]])
    )
    by_hand = (1.0**2 + 0.5**2 + 0.1**2) / 3
    assert float(got) == pytest.approx(by_hand, abs=1e-6)


def test_hidden_state_mse_applies_the_projection_first():
    proj = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    student = torch.tensor([[1.0, 2.0]])  # projects to [1, 2, 3]
    teacher = torch.tensor([[1.0, 0.0, 5.0]])
    got = hidden_state_mse(student, teacher, projection=proj)
    assert float(got.detach()) == pytest.approx((0 + 4 + 4) / 3, abs=1e-6)


def test_topk_kl_with_tail_is_the_kl_over_k_plus_one_categories():
    p = [0.5, 0.3, 0.1, 0.1]
    q = [0.25, 0.25, 0.25, 0.25]
    # top-2 of the teacher: ids 0 and 1; tail 0.2 for the teacher and
    # 0.5 for the student.
    by_hand = kl([0.5, 0.3, 0.2], [0.25, 0.25, 0.5])
    got = topk_kl(logs(q), logs([0.5, 0.3]), torch.tensor([0, 1]), tail=True)
    assert float(got) == pytest.approx(by_hand, abs=1e-6)

    # Without the tail, the teacher's two are renormalised to 5/8 and 3/8
    # and compared with the student's own probabilities at those ids.
    no_tail = 5 / 8 * math.log((5 / 8) / 0.25) + 3 / 8 * math.log(
        (3 / 8) / 0.25
    )
    got = topk_kl(logs(q), logs([0.5, 0.3]), torch.tensor([0, 1]), tail=False)
    assert float(got) == pytest.approx(no_tail, abs=1e-6)
    assert float(topk_kl(logs(p), logs([0.5, 0.3]), torch.tensor([0, 1]))) == (
        pytest.approx(0.0, abs=1e-6)
    )


def test_topk_kl_over_the_whole_vocabulary_equals_forward_kl():
    student, teacher = random_logits(4, 6, seed=1), random_logits(4, 6, seed=2)
    got = topk_kl(student, *teacher_topk(teacher, 6))
    assert float(got) == pytest.approx(
        float(forward_kl(student, teacher)), abs=1e-5
    )


def test_topk_kl_is_never_negative():
    for seed in range(20):
        student = random_logits(3, 10, seed=seed)
        teacher = random_logits(3, 10, seed=seed + 100)
        for k in (1, 3, 9):
            for tail in (True, False):
                cached = teacher_topk(teacher, k)
                assert float(topk_kl(student, *cached, tail=tail)) >= 0.0


# ------------------------------------------------------ exact zeros


@pytest.mark.parametrize("temperature", [0.1, 1.0, 2.0, 4.0, 20.0])
@pytest.mark.parametrize("loss", [forward_kl, reverse_kl, generalized_jsd])
def test_identical_logits_give_exactly_zero_at_any_temperature(
    loss, temperature
):
    x = random_logits(5, 7)
    assert float(loss(x, x.clone(), temperature=temperature)) == 0.0


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_identical_inputs_give_exactly_zero_with_padding(name):
    x = random_logits(3, 6, 9)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[0, 4:] = False
    mask[2, 1:] = False
    padded = x.clone()
    padded[~mask] = 1e4  # garbage in the padding must not matter
    got = PAIR_LOSSES[name](padded, x.clone(), mask=mask)
    assert float(got) == 0.0


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_identical_inputs_give_exactly_zero_after_the_causal_shift(name):
    ids = torch.tensor([[3, 1, 4, 1, 5, 9], [2, 6, 5, 3, 0, 0]])
    attention = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    x = random_logits(2, 6, 10)
    s, labels, kept = shift_for_next_token(x, ids, attention)
    t, _, _ = shift_for_next_token(x.clone(), ids, attention)
    assert float(PAIR_LOSSES[name](s, t, mask=kept)) == 0.0


def test_topk_kl_of_a_student_equal_to_its_teacher_is_exactly_zero():
    x = random_logits(2, 5, 12)
    for k in (1, 4, 12):
        assert float(topk_kl(x, *teacher_topk(x.clone(), k))) == 0.0


def test_soft_target_loss_of_identical_logits_is_the_weighted_cross_entropy():
    x = torch.tensor([[0.0, math.log(3.0)]])  # probabilities 1/4, 3/4
    got = soft_target_loss(
        x, x.clone(), torch.tensor([1]), temperature=3.0, alpha=0.5
    )
    assert float(got) == pytest.approx(0.5 * -math.log(0.75), abs=1e-6)


# ------------------------------------------------------ means over rows


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_a_batch_of_identical_rows_gives_the_loss_of_one_row(name):
    s, t = random_logits(1, 9, seed=3), random_logits(1, 9, seed=4)
    one = PAIR_LOSSES[name](s, t)
    many = PAIR_LOSSES[name](s.expand(7, 9), t.expand(7, 9))
    assert float(many) == pytest.approx(float(one), rel=1e-6)


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_the_loss_is_unchanged_when_padding_is_widened(name):
    s, t = random_logits(2, 5, 8, seed=5), random_logits(2, 5, 8, seed=6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    narrow = PAIR_LOSSES[name](s, t, mask=mask)

    pad = 11
    wide_s = torch.cat([s, random_logits(2, pad, 8, seed=7) * 100], 1)
    wide_t = torch.cat([t, random_logits(2, pad, 8, seed=8) * 100], 1)
    wide_mask = torch.cat([mask, torch.zeros(2, pad, dtype=torch.bool)], 1)
    wide = PAIR_LOSSES[name](wide_s, wide_t, mask=wide_mask)
    assert float(wide) == pytest.approx(float(narrow), rel=1e-6)


def test_the_average_is_per_kept_token_not_per_sequence():
    # Row losses 0 (identical) and a known KL: kept tokens 1 + 3 = 4, of
    # which 3 carry the KL, so the mean is 3/4 of it.
    p, q = [0.9, 0.1], [0.5, 0.5]
    teacher = logs(p).expand(2, 3, 2).clone()
    student = teacher.clone()
    student[1] = logs(q)
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    got = forward_kl(student, teacher, mask=mask)
    assert float(got) == pytest.approx(3 / 4 * kl(p, q), abs=1e-6)


def test_labels_of_minus_100_leave_rows_out_of_both_terms():
    s, t = random_logits(4, 5, seed=9), random_logits(4, 5, seed=10)
    labels = torch.tensor([1, IGNORE_INDEX, 3, IGNORE_INDEX])
    keep = torch.tensor([0, 2])
    both = soft_target_loss(s, t, labels, temperature=2.0, alpha=0.6)
    only = soft_target_loss(
        s[keep], t[keep], labels[keep], temperature=2.0, alpha=0.6
    )
    assert float(both) == pytest.approx(float(only), rel=1e-6)


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_an_all_masked_batch_gives_zero_with_a_finite_gradient(name):
    student = random_logits(2, 3, 6).requires_grad_()
    mask = torch.zeros(2, 3, dtype=torch.bool)
    loss = PAIR_LOSSES[name](
        student, random_logits(2, 3, 6, seed=1), mask=mask
    )
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert torch.isfinite(student.grad).all()


def test_all_labels_ignored_gives_zero_with_a_finite_gradient():
    student = random_logits(3, 4).requires_grad_()
    labels = torch.full((3,), IGNORE_INDEX)
    loss = soft_target_loss(
        student, random_logits(3, 4, seed=1), labels, temperature=4, alpha=0.5
    )
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert torch.isfinite(student.grad).all()


def test_mask_from_labels_keeps_everything_but_minus_100():
    labels = torch.tensor([[5, -100, 0], [-100, -100, 7]])
    expected = torch.tensor([[True, False, True], [False, False, True]])
    assert torch.equal(mask_from_labels(labels), expected)


# ------------------------------------------------------ the causal shift


def test_shift_pairs_position_t_with_token_t_plus_1():
    logits = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    ids = torch.tensor([[7, 8, 9, 10], [11, 12, 13, 14]])
    shifted, labels, kept = shift_for_next_token(logits, ids)
    assert torch.equal(shifted, logits[:, :3])
    assert torch.equal(labels, torch.tensor([[8, 9, 10], [12, 13, 14]]))
    assert kept.all()


def test_shift_drops_predictions_that_read_or_predict_padding():
    logits = torch.zeros(2, 5, 3)
    right_padded = [1, 1, 1, 0, 0]  # predictions 0->1, 1->2 are real
    left_padded = [0, 0, 1, 1, 1]  # predictions 2->3, 3->4 are real
    attention = torch.tensor([right_padded, left_padded])
    _, labels, kept = shift_for_next_token(logits, None, attention)
    assert labels is None
    expected = torch.tensor(
        [[True, True, False, False], [False, False, True, True]]
    )
    assert torch.equal(kept, expected)


def test_shift_also_drops_labels_of_minus_100():
    labels = torch.tensor([[1, -100, 2, 2]])  # prompt token at position 1
    _, shifted, kept = shift_for_next_token(torch.zeros(1, 4, 3), labels)
    assert torch.equal(kept, torch.tensor([[False, True, True]]))
    assert torch.equal(shifted, torch.tensor([[-100, 2, 2]]))


# ------------------------------------------------------ gradients


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_gradient_never_reaches_the_teacher(name):
    student = random_logits(3, 6).requires_grad_()
    teacher = random_logits(3, 6, seed=1).requires_grad_()
    PAIR_LOSSES[name](student, teacher).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_soft_target_gradient_never_reaches_the_teacher():
    student = random_logits(3, 6).requires_grad_()
    teacher = random_logits(3, 6, seed=1).requires_grad_()
    labels = torch.tensor([0, 1, 2])
    soft_target_loss(
        student, teacher, labels, temperature=4.0, alpha=0.9
    ).backward()
    assert teacher.grad is None


def test_topk_kl_gradient_never_reaches_the_cached_teacher():
    student = random_logits(3, 6).requires_grad_()
    logprobs, ids = teacher_topk(random_logits(3, 6, seed=1), 2)
    logprobs.requires_grad_()
    topk_kl(student, logprobs, ids).backward()
    assert logprobs.grad is None


def test_forward_kl_gradient_is_the_scaled_probability_difference():
    # d KL(p_T || q_T) / d z = (q_T - p_T) / T, per logit.
    s, t, temp = [1.0, 1.5, 0.2], [2.0, 1.0, 0.1], 4.0
    p = softmax([x / temp for x in t])
    q = softmax([x / temp for x in s])
    student = torch.tensor(s, requires_grad=True)
    forward_kl(student, torch.tensor(t), temperature=temp).backward()
    expected = torch.tensor(
        [(b - a) / temp for a, b in zip(p, q, strict=True)]
    )
    assert torch.allclose(student.grad, expected, atol=1e-7)


# ------------------------------------------------------ numerics


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_logits_of_magnitude_1e4_give_finite_values_and_gradients(name):
    student = (random_logits(4, 8) * 1e4 / 3).requires_grad_()
    teacher = random_logits(4, 8, seed=1) * 1e4 / 3
    loss = PAIR_LOSSES[name](student, teacher)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(student.grad).all()


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float64]
)
@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_losses_compute_in_float32_whatever_the_input_dtype(name, dtype):
    s, t = random_logits(3, 6), random_logits(3, 6, seed=1)
    low = PAIR_LOSSES[name](s.to(dtype), t.to(dtype))
    assert low.dtype == torch.float32
    reference = PAIR_LOSSES[name](s.to(dtype).float(), t.to(dtype).float())
    assert float(low) == float(reference)


def test_any_leading_shape_is_accepted():
    s, t = random_logits(2, 3, 4, 5), random_logits(2, 3, 4, 5, seed=1)
    flat = forward_kl(s.reshape(-1, 5), t.reshape(-1, 5))
    assert float(forward_kl(s, t)) == pytest.approx(float(flat), rel=1e-6)


# ------------------------------------------------------ bad input


def test_vocabularies_of_different_sizes_are_refused_with_slicing_advice():
    with pytest.raises(ValueError, match=r"\[\.\.\., :5\]"):
        forward_kl(torch.zeros(2, 5), torch.zeros(2, 7))
    with pytest.raises(ValueError, match="vocabularies differ"):
        reverse_kl(torch.zeros(2, 7), torch.zeros(2, 5))


def test_mismatched_leading_shapes_are_refused():
    with pytest.raises(ValueError, match="teacher_logits must have the shape"):
        forward_kl(torch.zeros(2, 5), torch.zeros(3, 5))


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), "2"])
def test_temperature_must_be_positive(temperature):
    with pytest.raises(ValueError, match="temperature"):
        forward_kl(
            torch.zeros(2, 3), torch.zeros(2, 3), temperature=temperature
        )


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_alpha_must_lie_in_0_1(alpha):
    with pytest.raises(ValueError, match="alpha"):
        soft_target_loss(
            torch.zeros(2, 3),
            torch.zeros(2, 3),
            torch.tensor([0, 1]),
            temperature=1.0,
            alpha=alpha,
        )


@pytest.mark.parametrize("beta", [-0.1, 1.01])
def test_beta_must_lie_in_0_1(beta):
    with pytest.raises(ValueError, match="beta"):
        generalized_jsd(torch.zeros(2, 3), torch.zeros(2, 3), beta=beta)


def test_labels_are_required_unless_alpha_is_1():
    with pytest.raises(ValueError, match="labels"):
        soft_target_loss(
            torch.zeros(2, 3), torch.zeros(2, 3), temperature=2.0, alpha=0.5
        )


def test_labels_out_of_range_are_refused():
    with pytest.raises(ValueError, match="labels must lie"):
        soft_target_loss(
            torch.zeros(2, 3),
            torch.zeros(2, 3),
            torch.tensor([0, 3]),
            temperature=2.0,
            alpha=0.5,
        )


def test_a_mask_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="mask must have shape"):
        forward_kl(
            torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), mask=torch.ones(2, 3)
        )


def test_labels_passed_as_a_mask_are_refused_with_advice():
    with pytest.raises(ValueError, match="mask_from_labels"):
        forward_kl(
            torch.zeros(3, 4),
            torch.zeros(3, 4),
            mask=torch.tensor([2, -100, 1]),
        )


def test_integer_logits_are_refused():
    with pytest.raises(ValueError, match="student_logits"):
        forward_kl(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3))


def test_hidden_states_of_different_widths_need_a_projection():
    with pytest.raises(ValueError, match="projection"):
        hidden_state_mse(torch.zeros(2, 3), torch.zeros(2, 4))


def test_topk_kl_refuses_raw_logits_in_place_of_logprobs():
    with pytest.raises(ValueError, match="teacher_topk"):
        topk_kl(
            torch.zeros(2, 5),
            torch.tensor([[3.0, 2.0]] * 2),
            torch.tensor([[0, 1]] * 2),
        )


def test_topk_kl_refuses_ids_outside_the_vocabulary_or_repeated():
    logprobs = logs([0.5, 0.3]).expand(2, 2)
    with pytest.raises(ValueError, match="teacher_topk_ids must lie"):
        topk_kl(torch.zeros(2, 5), logprobs, torch.tensor([[0, 5], [0, 1]]))
    with pytest.raises(ValueError, match="repeat"):
        topk_kl(torch.zeros(2, 5), logprobs, torch.tensor([[0, 0], [0, 1]]))
    with pytest.raises(ValueError, match="shape"):
        topk_kl(torch.zeros(2, 5), logprobs, torch.tensor([[0, 1]]))


def test_shift_needs_at_least_two_positions():
    with pytest.raises(ValueError, match="at least 2 positions"):
        shift_for_next_token(torch.zeros(2, 1, 5))


# ------------------------------------------------------ Hugging Face


def test_losses_apply_to_a_hugging_face_causal_lm():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        vocab_size=40,
        n_positions=16,
        n_embd=16,
        n_layer=1,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(0)
    teacher = transformers.GPT2LMHeadModel(config).eval()
    torch.manual_seed(1)
    student = transformers.GPT2LMHeadModel(config)

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 40, (2, 8), generator=g)
    attention = torch.ones(2, 8, dtype=torch.long)
    attention[1, 5:] = 0  # the second sequence is right-padded
    labels = ids.masked_fill(attention == 0, IGNORE_INDEX)

    with torch.no_grad():
        t_out = teacher(input_ids=ids, attention_mask=attention).logits
    s_out = student(input_ids=ids, attention_mask=attention).logits
    s, next_labels, kept = shift_for_next_token(s_out, labels, attention)
    t, _, _ = shift_for_next_token(t_out, labels, attention)
    assert int(kept.sum()) == 7 + 4

    loss = soft_target_loss(
        s, t, next_labels, temperature=2.0, alpha=0.5, mask=kept
    ) + generalized_jsd(s, t, beta=0.5, mask=kept)
    loss.backward()
    assert torch.isfinite(loss) and float(loss) > 0
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in teacher.parameters())

    # The hard term agrees with the model's own shifted cross-entropy.
    hard = soft_target_loss(s, t, next_labels, temperature=2.0, alpha=0.0)
    own = student(input_ids=ids, attention_mask=attention, labels=labels).loss
    assert float(hard) == pytest.approx(float(own), rel=1e-5)

    # A student that is the teacher scores exactly 0 at the kept tokens.
    assert float(forward_kl(t, t.clone(), mask=kept)) == 0.0
    assert float(topk_kl(t, *teacher_topk(t, 5), mask=kept)) == 0.0


# ------------------------------------------- -inf, NaN, bool and empty

INF = float("inf")


def test_a_teacher_logit_of_minus_inf_adds_nothing_to_forward_kl():
    # teacher (1/2, 1/2, 0), student (1/3, 1/3, 1/3): 0 * log 0 = 0, so
    # KL = 2 * 1/2 * log((1/2) / (1/3)) = log 1.5.
    student = torch.zeros(1, 3, requires_grad=True)
    teacher = torch.tensor([[0.0, 0.0, -INF]])
    loss = forward_kl(student, teacher)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(math.log(1.5), abs=1e-6)
    # the gradient is q - p = (1/3 - 1/2, 1/3 - 1/2, 1/3)
    expected = torch.tensor([[-1 / 6, -1 / 6, 1 / 3]])
    assert torch.allclose(student.grad, expected, atol=1e-6)


def test_minus_inf_on_both_sides_gives_zero_and_a_zero_gradient():
    x = torch.tensor([[0.0, 0.0, -INF]])
    for loss in (forward_kl, reverse_kl, generalized_jsd):
        student = x.clone().requires_grad_()
        value = loss(student, x.clone())
        value.backward()
        assert float(value.detach()) == 0.0
        assert torch.equal(student.grad, torch.zeros(1, 3))


def test_reverse_kl_ignores_a_class_the_student_rules_out():
    # student (1/2, 1/2, 0), teacher (1/3, 1/3, 1/3): log 1.5 again.
    student = torch.tensor([[0.0, 0.0, -INF]], requires_grad=True)
    loss = reverse_kl(student, torch.zeros(1, 3))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(math.log(1.5), abs=1e-6)
    assert torch.isfinite(student.grad).all()


def test_jsd_stays_finite_when_the_teacher_rules_a_class_out():
    # p = (1/2, 1/2, 0), q = (1/3, 1/3, 1/3), m = (5/12, 5/12, 1/6).
    p, q = [0.5, 0.5, 0.0], [1 / 3] * 3
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    by_hand = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    assert by_hand == pytest.approx(
        0.5 * math.log(1.2)
        + 0.5 * (2 / 3 * math.log(0.8) + 1 / 3 * math.log(2)),
        abs=1e-12,
    )
    student = torch.zeros(1, 3, requires_grad=True)
    loss = generalized_jsd(student, torch.tensor([[0.0, 0.0, -INF]]))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(by_hand, abs=1e-6)
    assert torch.isfinite(student.grad).all()


def test_soft_target_and_topk_losses_accept_a_ruled_out_class():
    teacher = torch.tensor([[0.0, 0.0, -INF]])
    student = torch.zeros(1, 3, requires_grad=True)
    # soft term log 1.5 at T = 1; hard term -log(1/3) for label 0
    loss = soft_target_loss(
        student, teacher, torch.tensor([0]), temperature=1.0, alpha=0.5
    )
    loss.backward()
    by_hand = 0.5 * math.log(1.5) + 0.5 * math.log(3)
    assert float(loss.detach()) == pytest.approx(by_hand, abs=1e-6)
    assert torch.isfinite(student.grad).all()
    for k in (2, 3):
        for tail in (True, False):
            student.grad = None
            loss = topk_kl(student, *teacher_topk(teacher, k), tail=tail)
            loss.backward()
            assert float(loss.detach()) == pytest.approx(
                math.log(1.5), abs=1e-6
            )
            assert torch.isfinite(student.grad).all()


def test_an_infinite_divergence_raises_instead_of_returning_inf():
    ruled_out = torch.tensor([[0.0, 0.0, -INF]])
    with pytest.raises(ValueError, match="forward_kl is \\+inf"):
        forward_kl(ruled_out, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="reverse_kl is \\+inf"):
        reverse_kl(torch.zeros(1, 3), ruled_out)
    with pytest.raises(ValueError, match="topk_kl is \\+inf"):
        topk_kl(ruled_out, *teacher_topk(torch.zeros(1, 3), 3))
    with pytest.raises(ValueError, match="cross-entropy term is \\+inf"):
        soft_target_loss(
            ruled_out,
            torch.zeros(1, 3),
            torch.tensor([2]),
            temperature=1.0,
            alpha=0.0,
        )


def test_a_term_of_weight_0_is_left_out_of_soft_target_loss():
    # alpha = 0: the soft term (infinite here) is not computed; the loss is
    # the cross-entropy -log(1/2) of label 0 under (1/2, 1/2, 0).
    got = soft_target_loss(
        torch.tensor([[0.0, 0.0, -INF]]),
        torch.zeros(1, 3),
        torch.tensor([0]),
        temperature=2.0,
        alpha=0.0,
    )
    assert float(got) == pytest.approx(math.log(2), abs=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), INF])
@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_nan_or_plus_inf_in_a_kept_row_is_refused(name, bad):
    x = random_logits(2, 4)
    x[1, 2] = bad
    y = random_logits(2, 4, seed=1)
    student = "student_hidden" if name == "hidden_state_mse" else "student"
    with pytest.raises(ValueError, match=student):
        PAIR_LOSSES[name](x, y)
    if name != "topk_kl":  # topk_kl's teacher is checked by teacher_topk
        teacher = "teacher_hidden" if name == "hidden_state_mse" else "teacher"
        with pytest.raises(ValueError, match=teacher):
            PAIR_LOSSES[name](y, x)
    # in a masked row it does not matter
    keep = torch.tensor([True, False])
    assert torch.isfinite(PAIR_LOSSES[name](x, y, mask=keep))


def test_logit_mse_refuses_minus_inf():
    with pytest.raises(ValueError, match="student_logits holds -inf"):
        logit_mse(torch.tensor([[0.0, -INF]]), torch.zeros(1, 2))


def test_a_row_of_only_minus_inf_is_refused():
    with pytest.raises(ValueError, match="teacher_logits has a kept row"):
        forward_kl(torch.zeros(2, 3), torch.tensor([[0.0] * 3, [-INF] * 3]))


def test_topk_kl_refuses_nan_logprobs_and_an_empty_top_k_without_tail():
    ids = torch.tensor([[0, 1]])
    with pytest.raises(ValueError, match="teacher_topk_logprobs holds NaN"):
        topk_kl(torch.zeros(1, 3), torch.tensor([[float("nan"), -1.0]]), ids)
    nothing = torch.tensor([[-INF, -INF]])
    with pytest.raises(ValueError, match="tail=True"):
        topk_kl(torch.zeros(1, 3), nothing, ids, tail=False)
    # with the tail, the teacher's mass is all outside the k ids: the
    # student's tail is 1/3, so KL = 1 * log(1 / (1/3)) = log 3.
    got = topk_kl(torch.zeros(1, 3), nothing, ids)
    assert float(got) == pytest.approx(math.log(3), abs=1e-6)


def test_teacher_topk_refuses_nan():
    with pytest.raises(ValueError, match="teacher_logits holds NaN"):
        teacher_topk(torch.tensor([[0.0, float("nan")]]), 1)


def test_bool_tensors_are_refused_as_labels_or_ids():
    flags = torch.tensor([True, False])
    with pytest.raises(ValueError, match="labels"):
        soft_target_loss(
            torch.zeros(2, 3),
            torch.zeros(2, 3),
            flags,
            temperature=1.0,
            alpha=0.5,
        )
    with pytest.raises(ValueError, match="labels"):
        mask_from_labels(flags)
    with pytest.raises(ValueError, match="labels"):
        shift_for_next_token(torch.zeros(1, 2, 3), flags[None])
    with pytest.raises(ValueError, match="teacher_topk_ids"):
        topk_kl(torch.zeros(1, 3), logs([0.5, 0.3])[None], flags[None])
    # masks may still be bool
    same = forward_kl(torch.zeros(2, 3), torch.zeros(2, 3), mask=flags)
    assert float(same) == 0.0


def test_an_empty_vocabulary_is_refused():
    for loss in (forward_kl, reverse_kl, generalized_jsd, logit_mse):
        with pytest.raises(ValueError, match="student_logits must have at"):
            loss(torch.zeros(2, 0), torch.zeros(2, 0))
    with pytest.raises(ValueError, match="teacher_logits must have at"):
        teacher_topk(torch.zeros(2, 0), 1)
    with pytest.raises(ValueError, match="teacher_topk_logprobs must have"):
        topk_kl(torch.zeros(2, 3), torch.zeros(2, 0), torch.zeros(2, 0))
    with pytest.raises(ValueError, match="student_hidden must have at"):
        hidden_state_mse(torch.zeros(2, 0), torch.zeros(2, 0))
