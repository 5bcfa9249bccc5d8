"""Tests of chapter 7's measurements, on rule-following models."""

import pytest
import torch
from torch import nn

from distill_lessons.experiments.gkd import (
    exposure,
    recovery_rate,
    sample_diversity,
)
from distill_lessons.tasks import ANSWER, END, RunningSum


class RuleModel(nn.Module):
    """Puts almost all probability on a rule's next token (copy format).

    ``reads_question=True`` takes every sum from the question's digits, as a
    teacher that recovers would; ``False`` adds the digit it just copied to
    the sum it just wrote, so a miscopy spoils every later sum.
    """

    def __init__(self, k, reads_question):
        super().__init__()
        self.k, self.reads_question = k, reads_question

    def next_token(self, row):
        k, n = self.k, len(row)  # n: index of the token to predict
        digits = row[:k]
        c = n - (k + 1)
        if c < 2 * k and c % 2 == 0:
            return digits[c // 2]
        if c < 2 * k:
            j = (c - 1) // 2
            if self.reads_question:
                return sum(digits[: j + 1]) % 10
            previous = row[n - 2] if j > 0 else 0
            return (previous + row[n - 1]) % 10
        if c == 2 * k:
            return ANSWER
        if c == 2 * k + 1:
            return sum(digits) % 10 if self.reads_question else row[n - 2]
        return END

    def logits_for(self, ids):
        batch, time = ids.shape
        out = torch.full((batch, time, 13), -30.0)
        for b in range(batch):
            row = ids[b].tolist()
            for t in range(self.k, time):
                out[b, t, self.next_token(row[: t + 1])] = 0.0
        return out

    def forward(self, ids, cache=None):
        if cache is None:
            return self.logits_for(ids)
        seen = torch.cat([cache[0], ids], dim=1) if cache else ids
        return self.logits_for(seen)[:, -ids.shape[1] :], [seen]


TASK = RunningSum(4)
DIGITS = TASK.problems(40, seed=0)


def test_the_rule_models_solve_clean_questions():
    for reads in (True, False):
        model = RuleModel(4, reads)
        seqs = TASK.sequences(DIGITS, "copy")
        assert torch.equal(
            model(seqs[:, :-1])[:, TASK.prompt_len - 1 :].argmax(-1),
            seqs[:, TASK.prompt_len :],
        )


def test_a_model_that_reads_the_question_always_recovers():
    assert recovery_rate(RuleModel(4, True), TASK, DIGITS) == 1.0


def test_a_model_that_adds_its_own_copy_never_recovers():
    # A miscopy shifts every later sum by a non-zero amount mod 10.
    assert recovery_rate(RuleModel(4, False), TASK, DIGITS) == 0.0


def test_a_student_equal_to_its_teacher_has_no_exposure_gap():
    model = RuleModel(4, True)
    out = exposure(model, model, TASK, DIGITS, seed=0)
    assert out["teacher_prefixes"] == pytest.approx(0.0, abs=1e-6)
    assert out["own_prefixes"] == pytest.approx(0.0, abs=1e-6)
    assert out["sampled_accuracy"] == 1.0
    assert out["miscopy_rate"] == 0.0


def test_a_nearly_deterministic_model_writes_one_distinct_completion():
    model = RuleModel(4, True)
    assert sample_diversity(model, TASK, DIGITS[:5], n=8, seed=0) == 1.0
