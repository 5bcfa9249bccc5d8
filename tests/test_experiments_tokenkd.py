"""Tests of distill_lessons.experiments.tokenkd (chapter 6's table)."""

import pytest

from distill_lessons.experiments import tokenkd


@pytest.fixture
def small_corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"def f(x):\n    return x + 1\n" * 200)
    return str(path)


def test_main_prints_one_paired_row_per_seed(small_corpus, capsys):
    code = tokenkd.main(
        [
            "--seeds",
            "2",
            "--teacher-steps",
            "2",
            "--student-steps",
            "2",
            "--batch-size",
            "2",
            "--corpus",
            small_corpus,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "| seed | scratch | forward KL | difference |" in out
    assert "\n| 0 |" in out and "\n| 1 |" in out


def test_run_pairs_students_that_see_the_same_batches(small_corpus):
    out = tokenkd.run(
        [0, 0],
        teacher_steps=2,
        student_steps=3,
        batch_size=2,
        corpus_path=small_corpus,
    )
    # the same seed twice gives the same pair: nothing else is random
    assert out["rows"][0] == out["rows"][1]
    assert out["teacher"] > 0


def test_a_step_count_of_zero_is_refused(small_corpus):
    with pytest.raises(ValueError, match="steps"):
        tokenkd.run([0], teacher_steps=0, corpus_path=small_corpus)
