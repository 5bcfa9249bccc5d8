"""Tests of the sequence-level and on-policy distillation loops."""

import math
from functools import partial

import pytest
import torch

from distill_lessons.losses import forward_kl, generalized_jsd, reverse_kl
from distill_lessons.onpolicy import (
    completion_targets,
    on_policy_loss,
    solve_rate,
    tiny_gpt,
    token_divergence,
    train_on_policy,
    train_sequences,
)
from distill_lessons.tasks import RunningSum


def gpt(seed, width=16):
    return tiny_gpt(13, 12, d_model=width, n_layers=1, seed=seed)


def test_only_the_completion_is_a_target():
    seqs = torch.tensor([[1, 2, 3, 4, 5]])
    targets = completion_targets(seqs, prompt_len=2)
    # Position 0 predicts token 1 (part of the prompt); 1.. predict 3, 4, 5.
    assert targets.tolist() == [[-100, 3, 4, 5]]


def test_a_prompt_as_long_as_the_sequence_is_refused():
    with pytest.raises(ValueError, match="prompt_len must be"):
        completion_targets(torch.zeros(2, 4).long(), 4)


def test_tiny_gpt_repeats_with_its_seed_and_leaves_global_rng_alone():
    torch.manual_seed(0)
    a = gpt(3)
    after = torch.rand(1)
    torch.manual_seed(0)
    before = torch.rand(1)
    b = gpt(3)
    assert torch.equal(before, after)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_sampled_tokens_carry_no_gradient_into_the_loss():
    torch.manual_seed(0)
    student, teacher = gpt(1), gpt(2)
    seqs = torch.randint(
        0, 13, (8, 10), generator=torch.Generator().manual_seed(0)
    )
    loss, sampled = on_policy_loss(
        student, teacher, seqs, 4, forward_kl, own_samples=True, seed=7
    )
    assert not sampled.requires_grad and sampled.dtype == torch.long
    assert not torch.equal(sampled[:, 4:], seqs[:, 4:])
    loss.backward()
    on_policy = [p.grad.clone() for p in student.parameters()]

    # The same sequences, handed in as fixed data, give the same gradient:
    # sampling added no path of its own to the student's parameters.
    student.zero_grad()
    again, _ = on_policy_loss(
        student, teacher, sampled, 4, forward_kl, own_samples=False
    )
    again.backward()
    assert torch.allclose(loss, again)
    for g1, p in zip(on_policy, student.parameters(), strict=True):
        assert torch.allclose(g1, p.grad)
    assert all(p.grad is None for p in teacher.parameters())


def test_own_samples_keep_the_prompt():
    student, teacher = gpt(1), gpt(2)
    seqs = torch.randint(
        0, 13, (5, 9), generator=torch.Generator().manual_seed(1)
    )
    _, sampled = on_policy_loss(
        student, teacher, seqs, 3, forward_kl, own_samples=True, seed=0
    )
    assert torch.equal(sampled[:, :3], seqs[:, :3])
    assert sampled.shape == seqs.shape


def test_the_loss_of_a_student_equal_to_its_teacher_is_zero():
    model = gpt(4)
    seqs = torch.randint(
        0, 13, (6, 9), generator=torch.Generator().manual_seed(2)
    )
    for div in (forward_kl, reverse_kl, partial(generalized_jsd, beta=0.5)):
        loss, _ = on_policy_loss(model, model, seqs, 3, div, own_samples=True)
        assert abs(float(loss.detach())) < 1e-5


def test_token_divergence_is_zero_for_the_teacher_itself_and_positive_else():
    teacher, student = gpt(5), gpt(6)
    seqs = torch.randint(
        0, 13, (4, 9), generator=torch.Generator().manual_seed(3)
    )
    same = token_divergence(teacher, teacher, seqs, 3)
    other = token_divergence(student, teacher, seqs, 3)
    assert same.shape == (4, 6)
    assert same.abs().max() < 1e-5
    assert (other > 0).all()


def test_a_uniform_student_is_log_vocab_from_a_one_hot_teacher():
    # KL(one-hot || uniform over 13) = ln 13, whatever the position.
    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, ids):
            return self.logits.expand(*ids.shape, -1)

    one_hot = torch.full((13,), -1e4)
    one_hot[3] = 0.0
    kl = token_divergence(
        Fixed(torch.zeros(13)), Fixed(one_hot), torch.zeros(2, 5).long(), 2
    )
    assert torch.allclose(kl, torch.full((2, 3), math.log(13)), atol=1e-4)


def test_on_policy_training_moves_the_student_towards_its_teacher():
    task = RunningSum(3)
    teacher = tiny_gpt(13, task.seq_len(), d_model=16, n_layers=1, seed=0)
    student = tiny_gpt(13, task.seq_len(), d_model=16, n_layers=1, seed=1)
    seqs = task.sequences(task.problems(64, seed=0))
    before = token_divergence(student, teacher, seqs, task.prompt_len).mean()
    losses = train_on_policy(
        student,
        teacher,
        seqs,
        task.prompt_len,
        forward_kl,
        lmbda=0.5,
        steps=30,
        batch_size=16,
        lr=1e-2,
        seed=0,
    )
    after = token_divergence(student, teacher, seqs, task.prompt_len).mean()
    assert len(losses) == 30
    assert after < 0.5 * before
    # the teacher is left as it was handed in
    assert all(p.requires_grad for p in teacher.parameters())


def test_training_on_sequences_learns_a_tiny_task():
    task = RunningSum(2)
    digits = task.problems(2000, seed=0)
    model = tiny_gpt(13, task.seq_len(), d_model=32, n_layers=2, seed=0)
    losses = train_sequences(
        model, task.sequences(digits), task.prompt_len, steps=300, seed=0
    )
    # Two digits, both steps written out: close to solved in 300 steps.
    assert losses[-1] < 0.3 * losses[0]
    assert solve_rate(model, task, task.problems(200, seed=9)) > 0.9


def test_lmbda_outside_zero_one_is_refused():
    student, teacher = gpt(1), gpt(2)
    with pytest.raises(ValueError, match="lmbda"):
        train_on_policy(
            student,
            teacher,
            torch.zeros(2, 6).long(),
            2,
            forward_kl,
            lmbda=1.5,
            steps=1,
            seed=0,
        )


def test_training_leaves_the_teachers_grad_flags_and_mode_as_they_were():
    student, teacher = gpt(1), gpt(2)
    teacher.train()
    teacher.head.weight.requires_grad_(False)  # the user froze one tensor
    flags = [p.requires_grad for p in teacher.parameters()]
    seqs = torch.randint(
        0, 13, (8, 9), generator=torch.Generator().manual_seed(0)
    )
    train_on_policy(
        student, teacher, seqs, 3, forward_kl, lmbda=0.5, steps=2, seed=0
    )
    assert [p.requires_grad for p in teacher.parameters()] == flags
    assert teacher.training
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.parametrize("prompt_len", [0, -1, 6, 7, 2.0])
def test_a_prompt_len_outside_one_to_length_minus_one_is_refused(prompt_len):
    student, teacher = gpt(1), gpt(2)
    seqs = torch.zeros(2, 6).long()
    with pytest.raises(ValueError, match="prompt_len must be"):
        train_on_policy(
            student,
            teacher,
            seqs,
            prompt_len,
            forward_kl,
            lmbda=0.0,
            steps=1,
            seed=0,
        )
    with pytest.raises(ValueError, match="prompt_len must be"):
        on_policy_loss(
            student, teacher, seqs, prompt_len, forward_kl, own_samples=True
        )
    with pytest.raises(ValueError, match="prompt_len must be"):
        token_divergence(student, teacher, seqs, prompt_len)


@pytest.mark.parametrize("mode", [True, False])
def test_own_samples_leave_the_students_mode_as_it_was(mode):
    student, teacher = gpt(1), gpt(2)
    student.train(mode)
    on_policy_loss(
        student,
        teacher,
        torch.zeros(2, 6).long(),
        3,
        forward_kl,
        own_samples=True,
    )
    assert student.training is mode


def test_a_teacher_with_another_vocabulary_is_refused():
    student = gpt(1)  # 13 tokens
    teacher = tiny_gpt(14, 12, d_model=16, n_layers=1, seed=2)
    seqs = torch.zeros(2, 6).long()
    with pytest.raises(ValueError, match="share one vocabulary.*13.*14"):
        token_divergence(student, teacher, seqs, 3)
    with pytest.raises(ValueError, match="share one vocabulary"):
        on_policy_loss(
            student, teacher, seqs, 3, forward_kl, own_samples=False
        )
