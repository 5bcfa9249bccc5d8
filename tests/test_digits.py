"""Tests of distill_lessons.digits: splits, shifts, students, bias shift."""

import pytest
import torch

from distill_lessons.digits import (
    DigitCNN,
    StudentMLPs,
    StudentTask,
    count_errors,
    digit_splits,
    munge,
    prior_matching_shift,
    shift_images,
    train_students,
)


def test_splits_have_the_documented_sizes_and_do_not_overlap():
    split = digit_splits(0)
    assert split.train_images.shape == (300, 8, 8)
    assert split.test_images.shape == (797, 8, 8)
    assert split.pool_images.shape == (1797 - 300 - 797, 8, 8)
    assert 0.0 <= float(split.train_images.min())
    assert float(split.train_images.max()) <= 1.0
    rows = [
        tuple(x.flatten().tolist())
        for x in torch.cat(
            [split.train_images, split.test_images, split.pool_images]
        )
    ]
    # load_digits has a few duplicate images; nearly all rows are distinct,
    # and the three parts together hold every image once.
    assert len(rows) == 1797 and len(set(rows)) > 1700


def test_splits_are_stratified_and_repeat_for_a_seed():
    a, b = digit_splits(3), digit_splits(3)
    assert torch.equal(a.train_images, b.train_images)
    counts = torch.bincount(a.train_labels, minlength=10)
    assert int(counts.min()) >= 29 and int(counts.max()) <= 31
    assert not torch.equal(a.train_labels, digit_splits(4).train_labels)


def test_a_shift_of_zero_changes_nothing():
    images = torch.rand(5, 8, 8)
    assert torch.equal(shift_images(images, 0, seed=0), images)


def test_shifts_move_a_single_pixel_by_at_most_one_step():
    images = torch.zeros(200, 8, 8)
    images[:, 4, 4] = 1.0
    moved = shift_images(images, 1, seed=0)
    assert torch.equal(moved.sum((1, 2)), torch.ones(200))
    where = moved.flatten(1).argmax(1)
    rows, cols = where // 8, where % 8
    assert set(rows.tolist()) == {3, 4, 5}
    assert set(cols.tolist()) == {3, 4, 5}


def test_the_teacher_maps_images_to_ten_logits():
    assert DigitCNN(seed=0)(torch.zeros(3, 8, 8)).shape == (3, 10)


def test_students_with_the_same_seed_start_identical():
    students = StudentMLPs([7, 7, 8])
    for w in students.weights:
        assert torch.equal(w[0], w[1])
        assert not torch.equal(w[0], w[2])


def test_a_student_learns_the_same_whatever_is_trained_beside_it():
    split = digit_splits(0)
    images, labels = split.train_images[:100], split.train_labels[:100]
    alone = StudentTask(images, labels, init_seed=1)
    other = StudentTask(
        images,
        labels,
        torch.randn(100, 10),
        method="soft",
        temperature=2.0,
        alpha=0.5,
        init_seed=2,
    )
    one = train_students([alone], steps=40, seed=0)
    two = train_students([other, alone], steps=40, seed=0)
    x = split.test_images[:50]
    assert torch.allclose(one.logits_of(0, x), two.logits_of(1, x), atol=1e-5)


def test_students_learn_the_training_set():
    split = digit_splits(0)
    task = StudentTask(split.train_images, split.train_labels)
    students = train_students([task], steps=300, seed=0)
    logits = students.logits_of(0, split.train_images)
    assert count_errors(logits, split.train_labels) < 15


def test_a_task_without_what_its_method_needs_is_refused():
    images = torch.zeros(4, 8, 8)
    with pytest.raises(ValueError, match="teacher_logits"):
        train_students([StudentTask(images, method="soft")], seed=0)
    with pytest.raises(ValueError, match="labels"):
        train_students([StudentTask(images)], seed=0)
    with pytest.raises(ValueError, match="method"):
        train_students(
            [
                StudentTask(
                    images, torch.zeros(4, dtype=torch.long), method="x"
                )
            ],
            seed=0,
        )


def test_count_errors_counts_wrong_argmaxes():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    assert count_errors(logits, torch.tensor([0, 0, 0])) == 1


def test_prior_matching_shift_predicts_the_asked_share():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1000, 10, generator=g)
    logits[:, 3] -= 5.0  # class 3 is almost never predicted
    shift = prior_matching_shift(logits, 3, share=0.1)
    shifted = logits.clone()
    shifted[:, 3] += shift
    share = float((shifted.argmax(-1) == 3).float().mean())
    assert share == pytest.approx(0.1, abs=0.002)
    assert 4.0 < shift < 7.0


def test_munge_without_swaps_copies_the_images():
    images = torch.rand(6, 8, 8)
    made = munge(images, 2, swap=0.0, seed=0)
    assert torch.equal(made, torch.cat([images, images]))


def test_munge_draws_pixels_between_an_image_and_its_neighbour():
    images = torch.zeros(2, 8, 8)
    images[1] = 0.5
    made = munge(images, 50, swap=1.0, spread=1e6, seed=0)
    # with a huge spread the noise vanishes: every pixel of a copy of
    # image 0 becomes its neighbour's 0.5 and the other way round
    assert torch.allclose(made[0::2], torch.full((50, 8, 8), 0.5), atol=1e-5)
    assert torch.allclose(made[1::2], torch.zeros(50, 8, 8), atol=1e-5)
