"""Soft targets on scikit-learn's 8x8 handwritten digits (chapter 5).

Provides the seeded splits (:func:`digit_splits`), the convolutional
teacher trained on shifted copies (:class:`DigitCNN`, :func:`train_teacher`),
small MLP students trained side by side (:func:`train_students`), the
class-prior bias correction of the omitted-class experiment
(:func:`prior_matching_shift`) and Bucilua-style generated inputs
(:func:`munge`). The data ship with scikit-learn; nothing is downloaded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from distill_lessons._checks import (
    generator,
    long_tensor,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from distill_lessons.losses import logit_mse, soft_target_loss

__all__ = [
    "CLASSES",
    "DigitSplits",
    "digit_splits",
    "shift_images",
    "DigitCNN",
    "train_teacher",
    "StudentTask",
    "StudentMLPs",
    "train_students",
    "count_errors",
    "prior_matching_shift",
    "munge",
]

log = logging.getLogger(__name__)

CLASSES = 10
"""Digits 0 to 9."""

METHODS = ("scratch", "soft", "logit_mse")
"""How :func:`train_students` can train a student."""

_N_DIGITS = 1797
"""Images in scikit-learn's ``load_digits``."""


def _int_seed(seed: int | torch.Generator, *, high: int | None = None) -> int:
    """An int seed (in ``[0, high)`` if given), or one from a Generator.

    An int is returned unchanged (so that the book's numbers do not move);
    a ``torch.Generator`` gives a fresh int in ``[0, 2**31 - 1)`` drawn
    from it.
    """
    if isinstance(seed, torch.Generator):
        return int(torch.randint(0, 2**31 - 1, (1,), generator=seed))
    generator(seed)  # refuses what is neither an int nor a Generator
    if high is not None and not 0 <= seed < high:
        raise ValueError(
            f"seed must be an int in [0, {high - 1}] or a torch.Generator, "
            f"got {seed!r}"
        )
    return seed


def _images(name: str, images: object, *, least: int = 1) -> torch.Tensor:
    """Check ``images`` ``(n, 8, 8)``: real, finite, ``n >= least``."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (n, 8, 8), got "
            f"{type(images).__name__}"
        )
    if images.dtype == torch.bool or images.is_complex():
        raise ValueError(
            f"{name} must hold real pixel values, got {images.dtype}"
        )
    if images.dim() != 3 or images.shape[1:] != (8, 8):
        raise ValueError(
            f"{name} must have shape (n, 8, 8), got {tuple(images.shape)}"
        )
    if len(images) < least:
        raise ValueError(
            f"{name} must hold at least {least} image(s), got {len(images)}"
        )
    if images.is_floating_point() and not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} must be finite, but holds NaN or inf")
    return images


def _labels(name: str, labels: object, n: int) -> torch.Tensor:
    """Check ``labels`` ``(n,)``: integer digit classes 0 to 9."""
    labels = long_tensor(name, labels, dims=1)  # refuses float and bool
    if len(labels) != n:
        raise ValueError(
            f"{name} must have {n} rows (one per image), got {len(labels)}"
        )
    if n and (int(labels.min()) < 0 or int(labels.max()) >= CLASSES):
        raise ValueError(
            f"{name} must be digit classes in [0, {CLASSES - 1}], got "
            f"values from {int(labels.min())} to {int(labels.max())}"
        )
    return labels


@dataclass
class DigitSplits:
    """One seeded split of the 1797 digits.

    Images are float32 ``(n, 8, 8)`` with pixel values in [0, 1]; labels are
    long ``(n,)``. ``pool_images`` is the unlabelled pool: a chapter may use
    its images (for example to choose a bias without test labels) but never
    its labels, which are kept only so that a reader can check afterwards.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    pool_images: torch.Tensor
    pool_labels: torch.Tensor


def digit_splits(
    seed: int | torch.Generator, *, n_train: int = 300, n_test: int = 797
) -> DigitSplits:
    """Stratified train, test and unlabelled-pool splits of ``load_digits``.

    ``n_train`` images (stratified, ``random_state=seed``) form the
    training and transfer set. Of the rest, ``n_test`` stratified images are
    the test set and the remainder (700 with the defaults) is the
    unlabelled pool. ``seed``: an int in [0, 2**32 - 1] (scikit-learn's
    ``random_state``), or a ``torch.Generator`` from which one is drawn.
    Every part must hold at least one image per class: ``n_train >= 10``,
    ``n_test >= 10`` and ``n_train + n_test <= 1787``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    seed = _int_seed(seed, high=2**32)
    positive_int("n_train", n_train)
    positive_int("n_test", n_test)
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if value < CLASSES:
            raise ValueError(
                f"{name} must be >= {CLASSES} (one image per class for a "
                f"stratified split), got {value}"
            )
    if n_train + n_test > _N_DIGITS - CLASSES:
        raise ValueError(
            f"n_train + n_test must be at most {_N_DIGITS - CLASSES}, so "
            f"that the pool keeps one image per class, got "
            f"{n_train} + {n_test}"
        )
    images, labels = load_digits(return_X_y=True)
    rest_x, train_x, rest_y, train_y = train_test_split(
        images, labels, test_size=n_train, stratify=labels, random_state=seed
    )
    pool_x, test_x, pool_y, test_y = train_test_split(
        rest_x, rest_y, test_size=n_test, stratify=rest_y, random_state=seed
    )

    def as_images(x):
        return torch.tensor(x, dtype=torch.float32).reshape(-1, 8, 8) / 16

    def as_labels(y):
        return torch.tensor(y, dtype=torch.long)

    return DigitSplits(
        as_images(train_x),
        as_labels(train_y),
        as_images(test_x),
        as_labels(test_y),
        as_images(pool_x),
        as_labels(pool_y),
    )


def shift_images(
    images: torch.Tensor,
    max_shift: int = 1,
    *,
    seed: int | torch.Generator,
) -> torch.Tensor:
    """Each image moved by a random whole-pixel shift, zeros shifted in.

    ``images``: ``(n, height, width)``. Every image gets its own shift, drawn
    uniformly from ``-max_shift .. max_shift`` in each direction.
    """
    non_negative_int("max_shift", max_shift)
    if images.dim() != 3:
        raise ValueError(
            "images must have shape (n, height, width), got "
            f"{tuple(images.shape)}"
        )
    g = generator(seed)
    n, h, w = images.shape
    m = max_shift
    padded = F.pad(images, (m, m, m, m))  # (n, h + 2m, w + 2m)
    dy = torch.randint(0, 2 * m + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * m + 1, (n,), generator=g)
    rows = dy[:, None] + torch.arange(h)  # (n, h)
    cols = dx[:, None] + torch.arange(w)  # (n, w)
    picked = padded[torch.arange(n)[:, None], rows]  # (n, h, w + 2m)
    return picked.gather(2, cols[:, None, :].expand(n, h, w))  # (n, h, w)


class DigitCNN(nn.Module):
    """The teacher: two 3x3 convolutions, max-pooling, dropout, two layers.

    ``forward`` maps images ``(n, 8, 8)`` to logits ``(n, 10)``. Its
    convolutions see the same weights at every position, an inductive bias
    that the MLP students lack.
    """

    def __init__(
        self,
        *,
        channels: tuple[int, int] = (32, 64),
        dropout: float = 0.3,
        seed: int = 0,
    ):
        super().__init__()
        probability("dropout", dropout)
        for c in channels:
            positive_int("channels", c)
        self.channels = tuple(channels)
        # nn.Module initialisers draw from the global generator: seed it
        # inside fork_rng so that the caller's random state is left alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._build(dropout)

    def _build(self, dropout: float) -> None:
        c1, c2 = self.channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(dropout),
        )
        self.head = nn.Sequential(
            nn.Linear(c2 * 4 * 4, 128),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, CLASSES),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.reshape(-1, 1, 8, 8)  # (n, 1, 8, 8)
        return self.head(self.features(x))  # (n, 10)


def train_teacher(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int = 150,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    max_shift: int = 1,
    channels: tuple[int, int] = (32, 64),
    seed: int | torch.Generator,
    progress: bool = False,
) -> DigitCNN:
    """A :class:`DigitCNN` trained on randomly shifted copies of ``images``.

    ``images`` ``(n, 8, 8)`` (finite, ``n >= 1``), ``labels`` ``(n,)``
    integer classes 0 to 9. The shifts are drawn afresh for every batch
    (``max_shift`` pixels at most). Adam with weight decay; returns the net
    in eval mode (dropout off). ``seed``: an int, or a
    ``torch.Generator`` from which one is drawn. Raises ``ValueError`` if
    the loss stops being finite.
    """
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    positive_float("lr", lr)
    images = _images("images", images)
    labels = _labels("labels", labels, len(images))
    seed = _int_seed(seed)
    teacher = DigitCNN(channels=channels, seed=seed)
    g = generator(seed)
    opt = torch.optim.Adam(
        teacher.parameters(), lr=lr, weight_decay=weight_decay
    )
    teacher.train()
    # Dropout draws from the global generator: seed it, in a fork.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in tqdm(range(epochs), desc="teacher", disable=not progress):
            order = torch.randperm(len(labels), generator=g)
            for batch in order.split(batch_size):
                x = shift_images(images[batch], max_shift, seed=g)
                loss = F.cross_entropy(teacher(x), labels[batch])
                _check_loss(loss, "train_teacher", lr)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return teacher.eval()


def _check_loss(loss: torch.Tensor, who: str, lr: float) -> None:
    if not bool(torch.isfinite(loss.detach())):
        raise ValueError(
            f"{who}: the training loss became {float(loss.detach())}; "
            f"the weights diverged (try a smaller lr than {lr})"
        )


@dataclass
class StudentTask:
    """What one student of :func:`train_students` learns from.

    ``images`` ``(n, 8, 8)``; ``labels`` ``(n,)`` (needed by ``"scratch"``
    and by ``"soft"`` with ``alpha < 1``); ``teacher_logits`` ``(n, 10)``
    (needed by ``"soft"`` and ``"logit_mse"``). ``method`` is

    - ``"scratch"``: cross-entropy on the hard labels;
    - ``"soft"``: :func:`~distill_lessons.losses.soft_target_loss` with
      ``temperature`` and ``alpha`` (weight of the soft term);
    - ``"logit_mse"``: :func:`~distill_lessons.losses.logit_mse`, no labels.

    ``init_seed`` fixes the student's initial weights: students with the
    same ``init_seed`` start from identical weights.

    :meth:`check` (run by :func:`train_students`) refuses a task without
    images, non-finite images or teacher logits, labels that are not
    integer classes 0 to 9, and teacher logits that are not ``(n, 10)``.
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    teacher_logits: torch.Tensor | None = None
    method: str = "scratch"
    temperature: float = 1.0
    alpha: float = 1.0
    init_seed: int = 0

    def check(self) -> None:
        """Raise ``ValueError`` if the task lacks what its method needs.

        (``TypeError`` if ``images`` or ``teacher_logits`` is not a tensor.)
        """
        if self.method not in METHODS:
            raise ValueError(
                f"method must be one of {METHODS}, got {self.method!r}"
            )
        n = len(_images("images", self.images))
        if self.method == "soft":
            positive_float("temperature", self.temperature)
            probability("alpha", self.alpha)
        if isinstance(self.init_seed, bool) or not isinstance(
            self.init_seed, int
        ):
            raise ValueError(
                f"init_seed must be an int, got {self.init_seed!r}"
            )
        needs_labels = self.method == "scratch" or (
            self.method == "soft" and self.alpha < 1
        )
        if needs_labels and self.labels is None:
            raise ValueError(f"labels are needed by method {self.method!r}")
        if self.method != "scratch" and self.teacher_logits is None:
            raise ValueError(
                f"teacher_logits are needed by method {self.method!r}"
            )
        if self.labels is not None:
            _labels("labels", self.labels, n)
        v = self.teacher_logits
        if v is not None:
            if not isinstance(v, torch.Tensor):
                raise TypeError(
                    "teacher_logits must be a torch.Tensor of shape "
                    f"(n, {CLASSES}), got {type(v).__name__}"
                )
            if not v.is_floating_point():
                raise ValueError(
                    "teacher_logits must hold floating-point logits, got "
                    f"{v.dtype}"
                )
            if v.dim() != 2 or v.shape[1] != CLASSES:
                raise ValueError(
                    f"teacher_logits must have shape (n, {CLASSES}), one "
                    f"logit per digit class, got {tuple(v.shape)}"
                )
            if len(v) != n:
                raise ValueError(
                    f"teacher_logits must have {n} rows (one per image), "
                    f"got {len(v)}"
                )
            if not bool(torch.isfinite(v).all()):
                raise ValueError(
                    "teacher_logits must be finite, but hold NaN or inf"
                )


class StudentMLPs(nn.Module):
    """Several MLP students, 64 -> 64 -> 64 -> 10, stored side by side.

    Student ``k`` has its own weights (slices ``[k]`` of stacked tensors),
    initialised from ``init_seeds[k]`` like ``nn.Linear`` (uniform in
    +-1/sqrt(fan_in)). Because Adam updates every weight on its own,
    training the stack with the sum of the students' losses is the same as
    training each student alone; batched matrix products just make it
    several times faster on a CPU.
    """

    def __init__(
        self, init_seeds: Sequence[int], hidden: Sequence[int] = (64, 64)
    ):
        super().__init__()
        if not init_seeds:
            raise ValueError("init_seeds must name at least one student")
        widths = [64, *hidden, CLASSES]
        for w in hidden:
            positive_int("hidden", w)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        inits = [self._init(widths, s) for s in init_seeds]
        for layer in range(len(widths) - 1):
            w = torch.stack([i[layer][0] for i in inits])  # (k, in, out)
            b = torch.stack([i[layer][1] for i in inits])  # (k, 1, out)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    @staticmethod
    def _init(widths, seed):
        g = generator(int(seed))
        layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            bound = 1 / math.sqrt(n_in)
            w = (torch.rand(n_in, n_out, generator=g) * 2 - 1) * bound
            b = (torch.rand(1, n_out, generator=g) * 2 - 1) * bound
            layers.append((w, b))
        return layers

    def __len__(self) -> int:
        return len(self.weights[0])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(k, n, 10)`` for images ``(k, n, 8, 8)`` or ``(n, 8, 8)``.

        With ``(n, 8, 8)`` every student sees the same images.
        """
        x = images.reshape(*images.shape[:-2], 64).float()
        if x.dim() == 2:
            x = x.expand(len(self), *x.shape)  # (k, n, 64)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(
            zip(self.weights, self.biases, strict=True)
        ):
            x = torch.baddbmm(b, x, w)  # (k, n, width)
            if i < last:
                x = torch.relu(x)
        return x

    @torch.no_grad()
    def logits_of(self, k: int, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, 10)`` of student ``k`` alone, for ``(n, 8, 8)``."""
        x = images.reshape(-1, 64).float()
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(
            zip(self.weights, self.biases, strict=True)
        ):
            x = x @ w[k] + b[k]  # (n, width)
            if i < last:
                x = torch.relu(x)
        return x


def train_students(
    tasks: Sequence[StudentTask],
    *,
    steps: int = 3000,
    batch_size: int = 64,
    lr: float = 1e-3,
    hidden: Sequence[int] = (64, 64),
    seed: int,
    progress: bool = False,
) -> StudentMLPs:
    """Train one MLP student per task, all at once; return them.

    Every step, each student takes ``batch_size`` rows of its task and one
    Adam step on its task's loss. The rows come from reshuffled passes over
    the task (every image equally often), drawn from ``seed`` and the
    task's size alone: students whose tasks have the same size see the same
    row numbers in the same order, whatever else is trained alongside, so
    comparisons between them are paired. 3000 steps of 64 is 640 passes
    over 300 images: the students are trained to convergence, which the
    soft-target loss needs (it converges more slowly than cross-entropy).

    ``seed``: an int, or a ``torch.Generator`` from which one is drawn.
    Raises ``ValueError`` for a task that :meth:`StudentTask.check`
    refuses, or if the loss stops being finite.
    """
    positive_int("steps", steps)
    positive_int("batch_size", batch_size)
    positive_float("lr", lr)
    if not tasks:
        raise ValueError("tasks must hold at least one StudentTask")
    for task in tasks:
        if not isinstance(task, StudentTask):
            raise TypeError(
                f"tasks must hold StudentTask objects, got "
                f"{type(task).__name__}"
            )
        task.check()
    seed = _int_seed(seed)
    students = StudentMLPs([t.init_seed for t in tasks], hidden)
    opt = torch.optim.Adam(students.parameters(), lr=lr)

    # Students that share a method, temperature and alpha share one call
    # of the loss; multiplying by the group size turns the loss's mean over
    # students into a sum, so each student gets its own gradient.
    groups: dict[tuple, list[int]] = {}
    for k, t in enumerate(tasks):
        key = (t.method, t.temperature, t.alpha, t.labels is None)
        groups.setdefault(key, []).append(k)
    # Every task's rows padded to the longest task, so that one indexing
    # step draws all the students' batches; each student only ever draws
    # row numbers below its own task's size.
    k = len(tasks)
    sizes = torch.tensor([len(t.images) for t in tasks])
    n_max = int(sizes.max())
    images = torch.zeros(k, n_max, 8, 8)
    labels = torch.zeros(k, n_max, dtype=torch.long)
    targets = torch.zeros(k, n_max, CLASSES)
    for i, t in enumerate(tasks):
        images[i, : sizes[i]] = t.images.float()
        if t.labels is not None:
            labels[i, : sizes[i]] = t.labels
        if t.teacher_logits is not None:
            targets[i, : sizes[i]] = t.teacher_logits.detach().float()
    which = torch.arange(k)[:, None]  # (k, 1)
    streams = {int(n): _RowStream(int(n), seed=seed) for n in sizes.unique()}

    for _ in tqdm(range(steps), desc="students", disable=not progress):
        drawn = {n: s.next(batch_size) for n, s in streams.items()}
        rows = torch.stack([drawn[int(n)] for n in sizes])  # (k, batch)
        logits = students(images[which, rows])  # (k, batch, 10)
        y, v = labels[which, rows], targets[which, rows]
        loss = logits.new_zeros(())
        for (method, temperature, alpha, no_labels), ks in groups.items():
            z = logits[ks]  # (group, batch, 10)
            if method == "scratch":
                part = F.cross_entropy(z.flatten(0, 1), y[ks].flatten())
            elif method == "logit_mse":
                part = logit_mse(z, v[ks])
            else:
                part = soft_target_loss(
                    z,
                    v[ks],
                    None if no_labels else y[ks],
                    temperature=temperature,
                    alpha=alpha,
                )
            loss = loss + part * len(ks)
        _check_loss(loss, "train_students", lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return students.eval()


class _RowStream:
    """Row numbers of ``n`` rows, in reshuffled passes, ``batch`` at a time."""

    def __init__(self, n: int, *, seed: int):
        positive_int("n", n)  # with no rows, next() would never return
        self.n = n
        self.g = generator(seed * 100_003 + n)
        self.left = torch.empty(0, dtype=torch.long)

    def next(self, batch: int) -> torch.Tensor:
        while len(self.left) < batch:
            fresh = torch.randperm(self.n, generator=self.g)
            self.left = torch.cat([self.left, fresh])
        out, self.left = self.left[:batch], self.left[batch:]
        return out


def count_errors(logits: torch.Tensor, labels: torch.Tensor) -> int:
    """How many rows of ``logits`` ``(n, 10)`` miss their label ``(n,)``.

    ``labels`` must hold integer classes (float and bool are refused).
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() < 1:
        raise ValueError(
            "logits must be a torch.Tensor of shape (n, classes), got "
            f"{getattr(logits, 'shape', type(logits).__name__)}"
        )
    labels = long_tensor("labels", labels)
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"labels must have shape {tuple(logits.shape[:-1])}, got "
            f"{tuple(labels.shape)}"
        )
    return int((logits.argmax(-1) != labels).sum())


def prior_matching_shift(
    logits: torch.Tensor,
    cls: int,
    *,
    share: float = 0.1,
    low: float = -50.0,
    high: float = 50.0,
    iterations: int = 60,
) -> float:
    """The bias shift that makes ``share`` of the rows predict ``cls``.

    Introduced in chapter 5 for the omitted-class experiment. ``logits``
    ``(n, classes)`` of *unlabelled* images. Adding ``delta`` to the
    logit (the output bias) of class ``cls`` can only raise the number of
    rows predicted as ``cls``, so bisection on ``[low, high]`` finds the
    smallest shift at which that share reaches ``share`` (the class's prior,
    assumed known: 1/10 for balanced digits). No label is used.

    ``logits`` must be finite with at least one row; ``cls`` an int class;
    ``low < high`` finite numbers; ``iterations`` an int >= 0.
    """
    probability("share", share)
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ValueError(
            "logits must be a floating-point torch.Tensor (n, classes), "
            f"got {getattr(logits, 'dtype', type(logits).__name__)}"
        )
    if logits.dim() != 2 or len(logits) == 0 or logits.shape[1] == 0:
        raise ValueError(
            "logits must have shape (n, classes) with n >= 1 rows, got "
            f"{tuple(logits.shape)}"
        )
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("logits must be finite, but hold NaN or inf")
    if isinstance(cls, bool) or not isinstance(cls, int):
        raise ValueError(f"cls must be an int class id, got {cls!r}")
    if not 0 <= cls < logits.shape[-1]:
        raise ValueError(
            f"cls must lie in [0, {logits.shape[-1] - 1}], got {cls}"
        )
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if not low < high:
        raise ValueError(f"low must be below high, got {low} and {high}")
    non_negative_int("iterations", iterations)
    onehot = F.one_hot(torch.tensor(cls), logits.shape[-1]).float()

    def predicted_share(delta: float) -> float:
        return float(
            ((logits + delta * onehot).argmax(-1) == cls).float().mean()
        )

    if predicted_share(high) < share:
        raise ValueError(
            f"no shift up to high={high} predicts share={share} as {cls}"
        )
    for _ in range(iterations):
        mid = (low + high) / 2
        if predicted_share(mid) >= share:
            high = mid
        else:
            low = mid
    return high


def munge(
    images: torch.Tensor,
    copies: int,
    *,
    swap: float = 0.5,
    spread: float = 1.0,
    seed: int | torch.Generator,
) -> torch.Tensor:
    """New unlabelled images in the spirit of Bucilua et al.'s MUNGE.

    Introduced in chapter 5. For every image its nearest neighbour (in
    pixel space) is found; each pixel is, with probability ``swap``,
    replaced by a value drawn around the neighbour's pixel, with standard
    deviation ``|difference| / spread``; other pixels are kept. Repeated
    ``copies`` times. ``images`` ``(n, 8, 8)`` in [0, 1]; returns
    ``(copies * n, 8, 8)``, clipped to [0, 1]. The new images carry no
    label: a teacher labels them. ``images`` must be a finite real tensor
    with at least 2 images, so that each has a neighbour.
    """
    positive_int("copies", copies)
    probability("swap", swap)
    positive_float("spread", spread)
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"images must be a torch.Tensor (n, 8, 8), got "
            f"{type(images).__name__}"
        )
    if images.dim() < 2 or len(images) < 2 or images[0].numel() == 0:
        raise ValueError(
            "images must hold at least 2 non-empty images (each needs a "
            f"nearest neighbour), got shape {tuple(images.shape)}"
        )
    if images.dtype == torch.bool or images.is_complex():
        raise ValueError(f"images must hold pixel values, got {images.dtype}")
    if not bool(torch.isfinite(images.float()).all()):
        raise ValueError("images must be finite, but hold NaN or inf")
    g = generator(seed)
    flat = images.reshape(len(images), -1).float()  # (n, 64)
    distances = torch.cdist(flat, flat)
    distances.fill_diagonal_(float("inf"))
    neighbour = flat[distances.argmin(-1)]  # (n, 64)
    sd = (flat - neighbour).abs() / spread

    made = []
    for _ in range(copies):
        take = torch.rand(flat.shape, generator=g) < swap
        noise = torch.randn(flat.shape, generator=g) * sd
        made.append(torch.where(take, neighbour + noise, flat))
    out = torch.cat(made).clamp(0.0, 1.0)  # (copies * n, 64)
    return out.reshape(-1, *images.shape[1:])
