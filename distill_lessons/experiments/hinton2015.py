"""Chapter 5's central table: soft targets on the scikit-learn digits.

    python -m distill_lessons.reproduce hinton2015 --seeds 5

For each seed: a convolutional teacher trained on shifted copies of 300
digits, and MLP students (same split, same initial weights) trained from
scratch, with soft targets at several temperatures, and by logit
matching. Then the omitted-class experiment (one digit left out of the
transfer set, before and after the class-prior bias correction). Prints
markdown tables of test errors, with Hinton, Vinyals and Dean's MNIST
figures beside them for scale.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from distill_lessons.digits import (
    StudentTask,
    count_errors,
    digit_splits,
    prior_matching_shift,
    train_students,
    train_teacher,
)

__all__ = ["HINTON_MNIST_ERRORS", "run", "main"]

HINTON_MNIST_ERRORS = {
    "teacher": 67,
    "scratch": 146,
    "soft T=4": 74,
}
"""Test errors out of 10,000 on MNIST (Hinton, Vinyals and Dean, 2015):
the big net, the small net trained alone, and the small net distilled (at
temperature 20 in the paper)."""


def _variants(temperatures, alpha):
    rows = [("scratch", "scratch", 1.0, 1.0)]
    rows += [(f"soft T={t:g}", "soft", float(t), alpha) for t in temperatures]
    rows.append(("logit MSE", "logit_mse", 1.0, 1.0))
    return rows


def _teacher(split, seed):
    teacher = train_teacher(
        split.train_images, split.train_labels, seed=seed, channels=(16, 32)
    )
    with torch.no_grad():
        soft = teacher(split.train_images)  # (300, 10), dropout off
        errors = count_errors(teacher(split.test_images), split.test_labels)
    return soft, errors


def run(
    seeds,
    *,
    temperatures=(1, 2, 4, 8),
    alpha: float = 0.9,
    steps: int = 3000,
    omitted: int | None = 3,
) -> tuple[dict[str, list[int]], dict[str, list[float]]]:
    """Test errors (of 797) per model, and the omitted-digit results.

    Returns ``(errors, omitted_results)``: ``errors[name]`` holds one
    count per seed; ``omitted_results`` maps ``"scratch"``, ``"before"``,
    ``"after"`` (accuracy on the test images of the omitted digit) and
    ``"shift"`` (the bias shift chosen by prior matching on the unlabelled
    pool) to one value per seed. ``omitted=None`` skips that experiment.
    """
    variants = _variants(temperatures, alpha)
    errors: dict[str, list[int]] = {"teacher": []}
    errors.update({name: [] for name, *_ in variants})
    left_out: dict[str, list[float]] = {
        "scratch": [],
        "before": [],
        "after": [],
        "shift": [],
    }
    for seed in seeds:
        split = digit_splits(seed)
        soft, teacher_errors = _teacher(split, seed)
        errors["teacher"].append(teacher_errors)
        tasks = [
            StudentTask(
                split.train_images,
                split.train_labels if method != "logit_mse" else None,
                None if method == "scratch" else soft,
                method=method,
                temperature=temperature,
                alpha=a,
                init_seed=100 * seed,
            )
            for _, method, temperature, a in variants
        ]
        students = train_students(tasks, steps=steps, seed=seed)
        for k, (name, *_) in enumerate(variants):
            logits = students.logits_of(k, split.test_images)
            errors[name].append(count_errors(logits, split.test_labels))
        if omitted is not None:
            for key, value in _omitted(
                split, soft, seed, omitted, steps
            ).items():
                left_out[key].append(value)
    return errors, left_out


def _omitted(split, soft, seed, digit, steps) -> dict[str, float]:
    keep = split.train_labels != digit
    images = split.train_images[keep]
    tasks = [
        StudentTask(
            images,
            None,
            soft[keep],
            method="soft",
            temperature=4.0,
            alpha=1.0,
            init_seed=100 * seed,
        ),
        StudentTask(images, split.train_labels[keep], init_seed=100 * seed),
    ]
    students = train_students(tasks, steps=steps, seed=seed)
    is_digit = split.test_labels == digit
    test = students.logits_of(0, split.test_images[is_digit])
    shift = prior_matching_shift(
        students.logits_of(0, split.pool_images), digit
    )
    fixed = test.clone()
    fixed[:, digit] += shift
    scratch = students.logits_of(1, split.test_images[is_digit])

    def accuracy(logits):
        return float((logits.argmax(-1) == digit).float().mean())

    return {
        "scratch": accuracy(scratch),
        "before": accuracy(test),
        "after": accuracy(fixed),
        "shift": shift,
    }


def _mean_std(values) -> str:
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"


def main(argv: list[str] | None = None) -> int:
    """Parse ``--seeds N`` and print the tables."""
    parser = argparse.ArgumentParser(
        prog="python -m distill_lessons.reproduce hinton2015",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds")
    parser.add_argument(
        "--steps",
        type=int,
        default=3000,
        help="training steps per student (3000 trains them to convergence)",
    )
    parser.add_argument(
        "--no-omitted",
        action="store_true",
        help="skip the omitted-class experiment",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    start = time.time()

    errors, result = run(
        seeds, steps=args.steps, omitted=None if args.no_omitted else 3
    )
    print(f"Test errors on the digits (797 test images), seeds {seeds}\n")
    header = "| model | " + " | ".join(f"seed {s}" for s in seeds)
    print(header + " | mean ± std | paired gain vs scratch | MNIST (of 10k) |")
    print("|---" * (len(seeds) + 4) + "|")
    for name, values in errors.items():
        # paired: the same split and initial weights for every student
        gains = [a - b for a, b in zip(errors["scratch"], values, strict=True)]
        gain = "–" if name == "scratch" else _mean_std(gains)
        mnist = str(HINTON_MNIST_ERRORS.get(name, ""))
        if name == "soft T=4":
            mnist += " (distilled at T=20)"
        cells = " | ".join(str(v) for v in values)
        print(f"| {name} | {cells} | {_mean_std(values)} | {gain} | {mnist} |")
    print(
        "\nMNIST figures: Hinton, Vinyals and Dean (2015); their distilled"
        " net used T = 20. Different data set and scale."
    )

    if not args.no_omitted:
        print("\nOmitted digit 3: accuracy on the test threes\n")
        print("| quantity | " + " | ".join(f"seed {s}" for s in seeds) + " |")
        print("|---" * (len(seeds) + 1) + "|")
        labels = {
            "scratch": "scratch, no threes seen",
            "before": "soft T=4, before correction",
            "after": "soft T=4, after correction",
            "shift": "bias shift (prior matching)",
        }
        for key, values in result.items():
            cells = " | ".join(f"{v:.2f}" for v in values)
            print(f"| {labels[key]} | {cells} |")
    print(f"\n({time.time() - start:.0f} s)")
    return 0
