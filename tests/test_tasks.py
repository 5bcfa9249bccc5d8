"""Tests of the running-sum task of chapters 7 and 8."""

import itertools

import pytest
import torch

from distill_lessons.tasks import ANSWER, END, EQUALS, RunningSum


def test_a_trace_writes_every_running_sum_then_the_answer():
    task = RunningSum(3)
    seq = task.sequences(torch.tensor([[3, 7, 2]]))
    # 3, 3+7=10 -> 0, 0+2 -> 2; the answer is the last sum.
    assert task.decode(seq[0]) == "372=302>2E"


def test_the_answer_only_format_skips_the_steps():
    task = RunningSum(3)
    seq = task.sequences(torch.tensor([[3, 7, 2]]), "answer")
    assert task.decode(seq[0]) == "372=>2E"


def test_lengths_match_the_formats():
    task = RunningSum(5)
    assert task.prompt_len == 6
    assert task.seq_len("trace") == 6 + 5 + 3
    assert task.seq_len("answer") == 6 + 3


def test_the_checker_accepts_every_right_answer_and_rejects_every_wrong():
    task = RunningSum(2)
    # All 100 problems with two digits, each paired with all ten answers.
    digits = torch.tensor(list(itertools.product(range(10), repeat=2)))
    for given in range(10):
        completions = torch.tensor([[ANSWER, given, END]] * len(digits))
        verdict = task.check(digits, completions)
        right = (digits[:, 0] + digits[:, 1]) % 10 == given
        assert torch.equal(verdict, right)


def test_the_checker_grades_the_answer_and_not_the_steps():
    task = RunningSum(3)
    digits = torch.tensor([[3, 7, 2]])
    wrong_steps = torch.tensor([[9, 9, 9, ANSWER, 2, END]])
    wrong_answer = torch.tensor([[3, 0, 2, ANSWER, 3, END]])
    assert task.check(digits, wrong_steps).item()
    assert not task.check(digits, wrong_answer).item()


def test_the_checker_rejects_a_completion_without_an_answer_mark():
    task = RunningSum(3)
    digits = torch.tensor([[3, 7, 2], [3, 7, 2]])
    completions = torch.tensor([[3, 0, 2, 2, 2, END], [3, 0, 2, 2, 2, ANSWER]])
    assert not task.check(digits, completions).any()


def test_the_checker_reads_the_digit_after_the_first_mark():
    task = RunningSum(3)
    digits = torch.tensor([[3, 7, 2]])
    completions = torch.tensor([[ANSWER, 5, ANSWER, 2, END, END]])
    assert not task.check(digits, completions).item()


def test_clean_demonstrations_are_always_right():
    task = RunningSum(6)
    digits = task.problems(500, seed=0)
    seqs = task.sequences(digits)
    assert task.check(digits, seqs[:, task.prompt_len :]).all()


def test_an_uncorrected_slip_shifts_every_later_sum_and_the_answer():
    task = RunningSum(6)
    digits = task.problems(400, seed=1)
    clean = task.sequences(digits)[:, task.prompt_len : task.prompt_len + 6]
    noisy = task.sequences(digits, slip_prob=1.0, recover_prob=0.0, seed=2)
    sums = noisy[:, task.prompt_len : task.prompt_len + 6]
    shift = (sums - clean) % 10  # (n, 6), zero before the slip
    first = (shift != 0).float().argmax(dim=1)
    for row in range(len(digits)):
        j = int(first[row])
        assert (shift[row, :j] == 0).all()
        assert (shift[row, j:] == shift[row, j]).all() and shift[row, j] > 0
    assert not task.check(digits, noisy[:, task.prompt_len :]).any()


def test_a_corrected_slip_changes_one_sum_and_keeps_the_answer():
    task = RunningSum(6)
    digits = task.problems(400, seed=1)
    clean = task.sequences(digits)
    noisy = task.sequences(digits, slip_prob=1.0, recover_prob=1.0, seed=2)
    changed = (noisy != clean).sum(dim=1)
    assert (changed == 1).all()
    assert task.check(digits, noisy[:, task.prompt_len :]).all()


def test_slips_happen_at_about_the_asked_rate():
    task = RunningSum(6)
    digits = task.problems(4000, seed=3)
    noisy = task.sequences(digits, slip_prob=0.3, recover_prob=0.0, seed=4)
    wrong = 1 - task.check(digits, noisy[:, task.prompt_len :]).float().mean()
    # Binomial(4000, 0.3): standard deviation 0.007.
    assert abs(float(wrong) - 0.3) < 0.03


def test_problems_repeat_with_the_seed():
    task = RunningSum(4)
    assert torch.equal(task.problems(8, seed=5), task.problems(8, seed=5))
    assert not torch.equal(task.problems(8, seed=5), task.problems(8, seed=6))


def test_prompts_end_with_the_question_mark():
    task = RunningSum(2)
    assert task.prompts(torch.tensor([[4, 4]])).tolist() == [[4, 4, EQUALS]]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda t: RunningSum(0), "k must be"),
        (lambda t: t.problems(0, seed=0), "n must be"),
        (lambda t: t.prompts(torch.tensor([[1, 2]])), "k=3 columns"),
        (lambda t: t.prompts(torch.tensor([[1, 2, 10]])), r"\[0, 9\]"),
        (lambda t: t.completion_len("steps"), "fmt must be"),
        (
            lambda t: t.sequences(
                torch.zeros(1, 3).long(), "answer", slip_prob=0.5
            ),
            "slip_prob",
        ),
        (
            lambda t: t.check(
                torch.zeros(2, 3).long(), torch.zeros(1, 6).long()
            ),
            "2 rows",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call(RunningSum(3))


@pytest.mark.parametrize("length", [0, 1])
def test_completions_too_short_to_hold_an_answer_are_wrong(length):
    task = RunningSum(3)
    digits = torch.tensor([[3, 7, 2], [1, 1, 0]])
    completions = torch.full((2, length), ANSWER)
    assert task.check(digits, completions).tolist() == [False, False]
