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
    train_teacher,
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


# ------------------------------------------------------------ bad input

NAN = float("nan")


def test_a_task_without_images_is_refused_instead_of_hanging():
    task = StudentTask(
        torch.zeros(0, 8, 8), labels=torch.zeros(0, dtype=torch.long)
    )
    with pytest.raises(ValueError, match="images must hold at least 1"):
        train_students([task], steps=1, seed=0)


def test_non_finite_teacher_logits_are_refused():
    v = torch.zeros(4, 10)
    v[2, 3] = NAN
    task = StudentTask(torch.zeros(4, 8, 8), None, v, method="logit_mse")
    with pytest.raises(ValueError, match="teacher_logits must be finite"):
        train_students([task], steps=1, seed=0)


def test_a_diverging_student_stops_with_an_error():
    split = digit_splits(0)
    task = StudentTask(split.train_images, split.train_labels)
    with pytest.raises(ValueError, match="diverged"):
        train_students([task], steps=50, lr=1e30, seed=0)


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (torch.zeros(4, 8, 8), torch.zeros(2, dtype=torch.long), "4 rows"),
        (torch.zeros(0, 8, 8), torch.zeros(0, dtype=torch.long), "at least"),
        (torch.full((2, 8, 8), NAN), torch.zeros(2, dtype=torch.long), "NaN"),
        (torch.zeros(2, 8, 8), torch.zeros(2), "integer"),
        (torch.zeros(2, 8, 8), torch.tensor([0, 10]), r"\[0, 9\]"),
        (torch.zeros(2, 64), torch.zeros(2, dtype=torch.long), "(n, 8, 8)"),
    ],
)
def test_train_teacher_refuses_bad_images_or_labels(images, labels, match):
    with pytest.raises(ValueError, match=match):
        train_teacher(images, labels, epochs=1, seed=0)


@pytest.mark.parametrize(
    ("labels", "logits", "match"),
    [
        (torch.tensor([0.0, 1.0]), None, "labels must hold integer"),
        (torch.tensor([True, False]), None, "labels must hold integer"),
        (torch.tensor([0, 12]), None, r"labels must be digit classes"),
        (None, torch.zeros(2, 7), r"teacher_logits must have shape \(n, 10"),
        (None, torch.zeros(2, 10, dtype=torch.long), "floating-point"),
        (None, torch.zeros(3, 10), "teacher_logits must have 2 rows"),
    ],
)
def test_student_task_check_refuses_bad_labels_or_logits(
    labels, logits, match
):
    method = "scratch" if logits is None else "logit_mse"
    task = StudentTask(torch.zeros(2, 8, 8), labels, logits, method=method)
    with pytest.raises(ValueError, match=match):
        task.check()


def test_student_task_check_refuses_a_bad_temperature_or_alpha():
    v = torch.zeros(2, 10)
    with pytest.raises(ValueError, match="temperature"):
        StudentTask(torch.zeros(2, 8, 8), None, v, "soft", 0.0).check()
    with pytest.raises(ValueError, match="alpha"):
        StudentTask(torch.zeros(2, 8, 8), None, v, "soft", 1.0, 2.0).check()


def test_seeds_may_be_generators():
    images = torch.rand(8, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8)
    task = StudentTask(images, labels)
    a = train_students([task], steps=3, seed=torch.Generator().manual_seed(5))
    b = train_students([task], steps=3, seed=torch.Generator().manual_seed(5))
    pairs = zip(a.parameters(), b.parameters(), strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)
    g = torch.Generator().manual_seed(5)
    one = train_teacher(images, labels, epochs=1, channels=(2, 2), seed=g)
    assert one(images).shape == (8, 10)
    split = digit_splits(torch.Generator().manual_seed(1))
    again = digit_splits(torch.Generator().manual_seed(1))
    assert torch.equal(split.train_labels, again.train_labels)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, r"seed must be an int in \[0, 4294967295\]"),
        ({"seed": 2**32}, "seed must be an int in"),
        ({"seed": 1.5}, "seed must be an int or a torch.Generator"),
        ({"seed": 0, "n_train": 9}, "n_train must be >= 10"),
        ({"seed": 0, "n_test": 9}, "n_test must be >= 10"),
        ({"seed": 0, "n_train": 300, "n_test": 1488}, "at most 1787"),
    ],
)
def test_digit_splits_refuses_what_scikit_learn_would(kwargs, match):
    with pytest.raises(ValueError, match=match):
        digit_splits(**kwargs)


def test_digit_splits_keeps_ten_images_in_the_pool_at_the_limit():
    split = digit_splits(0, n_train=300, n_test=1487)
    assert len(split.pool_labels) == 1797 - 300 - 1487 == 10


@pytest.mark.parametrize(
    ("logits", "cls", "kwargs", "match"),
    [
        (torch.zeros(5, 10), 2.5, {}, "cls must be an int"),
        (torch.zeros(5, 10), True, {}, "cls must be an int"),
        (torch.zeros(0, 10), 2, {}, "n >= 1 rows"),
        (torch.zeros(5, 10), 2, {"iterations": -5}, "iterations"),
        (torch.zeros(5, 10), 2, {"low": NAN}, "low must be finite"),
        (torch.zeros(5, 10), 2, {"low": 5.0, "high": 1.0}, "below high"),
        (torch.full((5, 10), NAN), 2, {}, "logits must be finite"),
        (torch.zeros(5, 10, dtype=torch.long), 2, {}, "floating-point"),
    ],
)
def test_prior_matching_shift_refuses_bad_arguments(
    logits, cls, kwargs, match
):
    with pytest.raises(ValueError, match=match):
        prior_matching_shift(logits, cls, **kwargs)


def test_munge_refuses_too_few_or_non_finite_images():
    with pytest.raises(ValueError, match="at least 2"):
        munge(torch.zeros(0, 8, 8), 1, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        munge(torch.zeros(1, 8, 8), 1, seed=0)
    with pytest.raises(ValueError, match="finite"):
        munge(torch.full((3, 8, 8), NAN), 1, seed=0)
    with pytest.raises(TypeError, match="images"):
        munge([[0.0]], 1, seed=0)


def test_count_errors_refuses_float_or_bool_labels():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="labels"):
        count_errors(logits, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="labels"):
        count_errors(logits, torch.tensor([True, False]))
