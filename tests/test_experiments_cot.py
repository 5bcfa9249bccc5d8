"""Tests of chapter 8's experiment helpers and command line."""

import pytest
import torch

from distill_lessons.experiments.cot import answers_from_traces, main
from distill_lessons.tasks import RunningSum


def test_answers_from_traces_drops_the_steps_and_keeps_the_answer():
    task = RunningSum(3)
    traces = task.sequences(torch.tensor([[3, 7, 2], [9, 9, 9]]))
    answers = answers_from_traces(task, traces)
    # 3+7+2 = 12 -> 2 and 9+9+9 = 27 -> 7, by hand.
    assert [task.decode(a) for a in answers] == ["372=>2E", "999=>7E"]


def test_answers_from_traces_keep_the_teachers_answer_even_if_wrong():
    task = RunningSum(3)
    traces = task.sequences(torch.tensor([[3, 7, 2]]))
    traces[0, -2] = 5  # a teacher that answered 5
    assert task.decode(answers_from_traces(task, traces)[0]) == "372=>5E"


def test_zero_seeds_is_refused():
    with pytest.raises(SystemExit):
        main(["--seeds", "0"])
