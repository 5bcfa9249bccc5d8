"""Distillation losses: soft targets, logit matching, KL, JSD and top-k.

Chapter 5 introduces :func:`forward_kl`, :func:`soft_target_loss`,
:func:`logit_mse` and :func:`hidden_state_mse`; chapter 6 adds
:func:`reverse_kl`, :func:`generalized_jsd`, :func:`topk_kl` and the
token-level helpers :func:`shift_for_next_token`, :func:`mask_from_labels`
and :func:`teacher_topk`.

Conventions shared by every loss here:

- logits have any leading shape ``(..., classes)``; a *row* is one position
  of the leading shape (one image, or one token of one sequence);
- the computation is in float32 whatever the input dtype, and logits of
  magnitude 1e4 give finite values and gradients;
- the teacher's tensors are detached, so no gradient ever reaches the
  teacher;
- ``mask`` (shape ``(...)``, bool or 0/1) keeps rows; the result is the mean
  over kept rows, so padding width and sequence length do not change it; a
  batch where no row is kept gives 0 with a finite (zero) gradient;
- divergences are in nats, summed over the class axis;
- a logit of ``-inf`` gives its class probability exactly 0, and the
  divergences use ``0 * log 0 = 0``: a class the teacher rules out adds
  nothing to KL(teacher || student), and values and gradients stay finite.
  Where the exact value is infinite (the distribution that takes the
  expectation gives mass to a class the other rules out, or a label names
  a class the student rules out) the loss raises ``ValueError`` instead of
  returning ``inf``, whose gradient is NaN or meaningless;
- NaN and ``+inf`` in the rows that are kept raise ``ValueError`` naming
  the argument (masked rows may hold anything); so does a kept row whose
  logits are all ``-inf``, and :func:`logit_mse` and
  :func:`hidden_state_mse` refuse ``-inf`` too;
- bad input raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from distill_lessons._checks import (
    long_tensor,
    positive_float,
    positive_int,
    probability,
)

__all__ = [
    "IGNORE_INDEX",
    "forward_kl",
    "soft_target_loss",
    "logit_mse",
    "hidden_state_mse",
    "reverse_kl",
    "generalized_jsd",
    "topk_kl",
    "teacher_topk",
    "shift_for_next_token",
    "mask_from_labels",
]

IGNORE_INDEX = -100
"""Label value that marks a position to ignore (as in ``F.cross_entropy``)."""


# ---------------------------------------------------------------- checks


def _float_tensor(
    name: str, value: object, axis: str = "classes"
) -> torch.Tensor:
    """``value`` as float32, refusing anything that is not a float tensor.

    The last axis (``axis``: classes, features, ...) must not be empty.
    """
    if not isinstance(value, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor, got {type(value).__name__}"
        )
    if not value.is_floating_point():
        raise ValueError(
            f"{name} must hold floating-point numbers, got {value.dtype}"
        )
    if value.dim() < 1:
        raise ValueError(f"{name} must have shape (..., {axis}), got a scalar")
    if value.shape[-1] == 0:
        raise ValueError(
            f"{name} must have at least one entry on its last axis "
            f"({axis}), got shape {tuple(value.shape)}"
        )
    return value.float()


def _check_values(
    name: str, rows: torch.Tensor, *, neg_inf: bool = True
) -> None:
    """Refuse NaN and ``+inf`` in the kept ``rows`` ``(n, classes)``.

    With ``neg_inf`` (logits), ``-inf`` is allowed (probability 0) but a
    row of nothing else is refused; without it every value must be finite.
    One reduction on the common path, where everything is fine.
    """
    if not rows.numel():
        return
    rows = rows.detach()
    if neg_inf:
        top = rows.amax(-1)  # (n,): NaN if the row holds a NaN
        if bool(torch.isfinite(top).all()):
            return
    else:
        if bool(torch.isfinite(rows).all()):
            return
        top = rows
    if bool(torch.isnan(top).any()):
        raise ValueError(
            f"{name} holds NaN in a row that is kept; fix the values or "
            "leave the row out with mask"
        )
    if bool(torch.isposinf(top).any()):
        raise ValueError(
            f"{name} holds +inf in a row that is kept; logits must be "
            "finite (or -inf for a class of probability 0)"
        )
    if not neg_inf:
        raise ValueError(
            f"{name} holds -inf in a row that is kept; it must be finite"
        )
    raise ValueError(
        f"{name} has a kept row whose logits are all -inf: it gives no "
        "class any probability"
    )


def _kl_terms(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``p * (log p - log q)`` per class, with ``0 * log 0 = 0``.

    Where ``p`` is 0 (``log_p`` is ``-inf``) the term is 0 whatever ``q``
    is; both inputs are replaced there before the arithmetic, so neither
    the term nor its gradient is NaN. Where ``q`` is 0 and ``p`` is not,
    the term is ``+inf``. Without a zero it is plain ``F.kl_div``, the
    same graph as before zeros were handled, so that finite inputs give
    the same values and gradients bit for bit.
    """
    zero = torch.isneginf(log_p)
    if not bool(zero.any()):
        return F.kl_div(log_q, log_p, reduction="none", log_target=True)
    terms = F.kl_div(
        log_q.masked_fill(zero, 0.0),
        log_p.masked_fill(zero, 0.0),
        reduction="none",
        log_target=True,
    )
    return terms.masked_fill(zero, 0.0)


def _finite_loss(value: torch.Tensor, infinite: str) -> torch.Tensor:
    """``value``, or ``ValueError``: ``infinite`` says why it is +inf."""
    if bool(torch.isfinite(value.detach())):
        return value
    if bool(torch.isnan(value.detach())):
        raise ValueError(
            "the loss is NaN although the logits are not: the logits "
            "divided by temperature overflow float32; lower their "
            "magnitude or raise temperature"
        )
    raise ValueError(infinite)


_FORWARD_INFINITE = (
    "forward_kl is +inf: in a kept row student_logits gives probability "
    "0 (a logit of -inf) to a class that teacher_logits gives positive "
    "probability; give that class a finite logit, or use generalized_jsd, "
    "which stays finite"
)
_REVERSE_INFINITE = (
    "reverse_kl is +inf: in a kept row teacher_logits gives probability "
    "0 (a logit of -inf) to a class that student_logits gives positive "
    "probability; use forward_kl or generalized_jsd, which stay finite "
    "there"
)


def _check_pair(
    student: torch.Tensor,
    teacher: torch.Tensor,
    student_name: str = "student_logits",
    teacher_name: str = "teacher_logits",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both tensors in float32, the teacher detached, shapes checked."""
    student = _float_tensor(student_name, student)
    teacher = _float_tensor(teacher_name, teacher).detach()
    s_classes, t_classes = student.shape[-1], teacher.shape[-1]
    if s_classes != t_classes:
        shared = min(s_classes, t_classes)
        raise ValueError(
            f"{student_name} has {s_classes} classes but {teacher_name} has "
            f"{t_classes}: the two vocabularies differ in size. If they "
            f"share their first {shared} ids, slice both to the shared "
            f"part, e.g. {student_name}[..., :{shared}] and "
            f"{teacher_name}[..., :{shared}]; otherwise map one vocabulary "
            f"onto the other first"
        )
    if student.shape != teacher.shape:
        raise ValueError(
            f"{teacher_name} must have the shape of {student_name}, "
            f"{tuple(student.shape)}, got {tuple(teacher.shape)}"
        )
    return student, teacher


def _check_mask(
    mask: torch.Tensor | None, rows: torch.Size
) -> torch.Tensor | None:
    """A bool mask of shape ``rows``, or ``None`` when every row is kept."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise ValueError(
            f"mask must be a torch.Tensor of shape {tuple(rows)}, "
            f"got {type(mask).__name__}"
        )
    if mask.shape != rows:
        raise ValueError(
            f"mask must have shape {tuple(rows)} (the logits without their "
            f"class axis), got {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        if mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(
                "mask must be bool or hold only 0 and 1; to ignore labels "
                f"equal to {IGNORE_INDEX}, pass "
                "mask=mask_from_labels(labels)"
            )
        mask = mask != 0
    return mask


def _kept_rows(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The rows of ``x`` (..., classes) that ``mask`` keeps: (kept, classes).

    Masked rows are dropped before any arithmetic, so whatever they hold
    (even inf or NaN) cannot reach the result or its gradient.
    """
    x = x.reshape(-1, x.shape[-1])  # (rows, classes)
    if mask is None:
        return x
    return x[mask.reshape(-1)]  # (kept, classes)


def _mean_over_rows(per_row: torch.Tensor) -> torch.Tensor:
    """Mean of a 1-d tensor; 0 (with a zero gradient) when it is empty."""
    return per_row.sum() / max(per_row.numel(), 1)


def _log_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.log_softmax(logits / temperature, dim=-1)


# ------------------------------------------------------ chapter 5 losses


def forward_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened distributions.

    Introduced in chapter 5. ``student_logits`` and ``teacher_logits``:
    ``(..., classes)``; ``mask``: ``(...)``, bool or 0/1, ``True`` keeps a
    row. Both distributions are ``softmax(logits / temperature)``. Returns
    a scalar in nats: the divergence summed over the class axis, averaged
    over the kept rows (0 when no row is kept). It is *not* multiplied by
    ``temperature ** 2``; :func:`soft_target_loss` does that.

    A teacher logit of ``-inf`` (probability 0) adds nothing; a student
    logit of ``-inf`` where the teacher's probability is positive makes
    the divergence infinite, and raises.

    Raises ``ValueError`` for mismatched shapes, vocabularies of different
    sizes, ``temperature <= 0``, a mask of the wrong shape, NaN or ``+inf``
    in a kept row, or an infinite divergence.
    """
    student, teacher = _check_pair(student_logits, teacher_logits)
    temperature = positive_float("temperature", temperature)
    keep = _check_mask(mask, student.shape[:-1])
    s_rows, t_rows = _kept_rows(student, keep), _kept_rows(teacher, keep)
    _check_values("student_logits", s_rows)
    _check_values("teacher_logits", t_rows)
    return _forward_kl_rows(s_rows, t_rows, temperature)


def _forward_kl_rows(
    s_rows: torch.Tensor, t_rows: torch.Tensor, temperature: float
) -> torch.Tensor:
    """:func:`forward_kl` of kept, checked rows ``(n, classes)``."""
    log_q = _log_softmax(s_rows, temperature)  # (n, C)
    log_p = _log_softmax(t_rows, temperature)  # (n, C)
    # sum p * (log p - log q): the teacher is the target, so this is
    # KL(teacher || student).
    per_row = _kl_terms(log_p, log_q)
    return _finite_loss(_mean_over_rows(per_row.sum(-1)), _FORWARD_INFINITE)


def soft_target_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    temperature: float,
    alpha: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hinton, Vinyals and Dean's distillation loss (soft plus hard targets).

    Introduced in chapter 5. The convention (libraries differ, so it is
    stated here)::

        loss = alpha * temperature**2 * KL(teacher_T || student_T)
               + (1 - alpha) * CE(student at temperature 1, labels)

    ``alpha`` is the weight of the *soft* term and ``1 - alpha`` the weight
    of the hard-label cross-entropy. The soft term is multiplied by
    ``temperature ** 2`` because its gradient shrinks like
    ``1 / temperature ** 2`` at high temperature; the product keeps the two
    terms on the same scale when the temperature changes.

    Shapes: logits ``(..., classes)``; ``labels`` ``(...)`` of integer class
    ids, where ``IGNORE_INDEX`` (-100) marks a row to leave out of *both*
    terms; ``mask`` ``(...)`` keeps rows as in :func:`forward_kl`. Both
    terms are averaged over the rows that are kept. ``labels`` may be
    ``None`` only when ``alpha == 1`` (soft targets alone).

    With ``alpha == 0`` the soft term is left out, and with ``alpha ==
    1`` the hard one (their weight is 0, so the value is the same), so an
    infinite term of weight 0 does not turn the loss into NaN. Logits of
    ``-inf`` are treated as in :func:`forward_kl`; a label naming a class
    to which the student gives probability 0 makes the cross-entropy
    infinite, and raises.

    Raises ``ValueError`` for ``alpha`` outside [0, 1], ``temperature <=
    0``, missing labels with ``alpha < 1``, labels that are not integer
    class ids (bool included), shapes that do not match, NaN or ``+inf``
    in a kept row, or an infinite term.
    """
    student, teacher = _check_pair(student_logits, teacher_logits)
    temperature = positive_float("temperature", temperature)
    alpha = probability("alpha", alpha)
    rows = student.shape[:-1]
    keep = _check_mask(mask, rows)
    if labels is None:
        if alpha < 1.0:
            raise ValueError(
                f"labels are needed when alpha < 1 (got alpha={alpha}); "
                "pass labels, or alpha=1.0 for soft targets alone"
            )
    else:
        labels = _check_labels(labels, rows, student.shape[-1])
        from_labels = labels != IGNORE_INDEX
        keep = from_labels if keep is None else keep & from_labels

    s_rows, t_rows = _kept_rows(student, keep), _kept_rows(teacher, keep)
    _check_values("student_logits", s_rows)
    _check_values("teacher_logits", t_rows)
    soft = None
    if alpha > 0.0:
        soft = _forward_kl_rows(s_rows, t_rows, temperature) * (temperature**2)
    if labels is None or alpha == 1.0:
        return alpha * soft
    kept_labels = labels.reshape(-1)
    if keep is not None:
        kept_labels = kept_labels[keep.reshape(-1)]  # (kept,)
    hard = F.cross_entropy(s_rows, kept_labels, reduction="sum") / max(
        kept_labels.numel(), 1
    )
    hard = _finite_loss(
        hard,
        "the cross-entropy term is +inf: labels name a class to which "
        "student_logits gives probability 0 (a logit of -inf)",
    )
    if soft is None:
        return (1.0 - alpha) * hard
    return alpha * soft + (1.0 - alpha) * hard


def _check_labels(
    labels: object, rows: torch.Size, classes: int
) -> torch.Tensor:
    labels = long_tensor("labels", labels)  # refuses float and bool
    if labels.shape != rows:
        raise ValueError(
            f"labels must have shape {tuple(rows)} (the logits without "
            f"their class axis), got {tuple(labels.shape)}"
        )
    real = labels[labels != IGNORE_INDEX]
    if real.numel() and (real.min() < 0 or real.max() >= classes):
        raise ValueError(
            f"labels must lie in [0, {classes - 1}] or be {IGNORE_INDEX}, "
            f"got values from {int(real.min())} to {int(real.max())}"
        )
    return labels


def _row_mse(student, teacher, mask, student_name, teacher_name):
    """Squared error averaged over the last axis, then over kept rows."""
    keep = _check_mask(mask, student.shape[:-1])
    s_rows, t_rows = _kept_rows(student, keep), _kept_rows(teacher, keep)
    _check_values(student_name, s_rows, neg_inf=False)
    _check_values(teacher_name, t_rows, neg_inf=False)
    diff = s_rows - t_rows  # (n, features)
    return _mean_over_rows(diff.square().mean(-1))


def logit_mse(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Ba and Caruana's logit matching: squared error between the logits.

    Introduced in chapter 5. Logits ``(..., classes)``, ``mask`` ``(...)``.
    Returns the squared difference averaged over the class axis and then
    over the kept rows; without a mask it equals
    ``F.mse_loss(student_logits, teacher_logits)``. Logits are only defined
    up to an additive constant per row; this loss, like Ba and Caruana's,
    matches them including that constant. The kept rows must be finite
    (``-inf`` included: it has no finite squared error).
    """
    student, teacher = _check_pair(student_logits, teacher_logits)
    return _row_mse(student, teacher, mask, "student_logits", "teacher_logits")


def hidden_state_mse(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    *,
    projection: Callable[[torch.Tensor], torch.Tensor] | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared error between hidden states (chapter 4's target, FitNets').

    Introduced in chapter 5 (used in chapter 4's spirit). ``student_hidden``
    ``(..., d_student)`` and ``teacher_hidden`` ``(..., d_teacher)``. When
    the widths differ, ``projection`` (for example a trainable
    ``nn.Linear(d_student, d_teacher)``) maps the student's states to the
    teacher's width first; it is applied to the student's tensor as given,
    and its output is then cast to float32. Returns the squared difference
    averaged over the feature axis and over the rows ``mask`` ``(...)``
    keeps, which must be finite.
    """
    if projection is not None:
        if not callable(projection):
            raise ValueError(
                "projection must be callable (e.g. an nn.Linear), got "
                f"{type(projection).__name__}"
            )
        _float_tensor("student_hidden", student_hidden, "features")
        student_hidden = projection(student_hidden)
    student = _float_tensor("student_hidden", student_hidden, "features")
    teacher = _float_tensor(
        "teacher_hidden", teacher_hidden, "features"
    ).detach()
    if student.shape[-1] != teacher.shape[-1]:
        raise ValueError(
            f"student_hidden has width {student.shape[-1]} but "
            f"teacher_hidden has width {teacher.shape[-1]}; pass "
            "projection=nn.Linear(d_student, d_teacher) to map one onto "
            "the other"
        )
    if student.shape != teacher.shape:
        raise ValueError(
            f"teacher_hidden must have shape {tuple(student.shape)} "
            f"(that of student_hidden), got {tuple(teacher.shape)}"
        )
    return _row_mse(student, teacher, mask, "student_hidden", "teacher_hidden")


# ------------------------------------------------------ chapter 6 losses


def reverse_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(student || teacher): the mode-seeking direction.

    Introduced in chapter 6. Same shapes, mask, temperature and units as
    :func:`forward_kl`, with the two distributions swapped: the expectation
    is taken under the student, so the student is punished for putting
    mass where the teacher has little, and not for missing a mode.

    A student logit of ``-inf`` adds nothing; a teacher logit of ``-inf``
    where the student's probability is positive makes the divergence
    infinite, and raises ``ValueError``.
    """
    student, teacher = _check_pair(student_logits, teacher_logits)
    temperature = positive_float("temperature", temperature)
    keep = _check_mask(mask, student.shape[:-1])
    s_rows, t_rows = _kept_rows(student, keep), _kept_rows(teacher, keep)
    _check_values("student_logits", s_rows)
    _check_values("teacher_logits", t_rows)

    log_q = _log_softmax(s_rows, temperature)  # (n, C)
    log_p = _log_softmax(t_rows, temperature)  # (n, C)
    per_row = _kl_terms(log_q, log_p)
    return _finite_loss(_mean_over_rows(per_row.sum(-1)), _REVERSE_INFINITE)


def _log_mixture(
    log_p: torch.Tensor, log_q: torch.Tensor, beta: float
) -> torch.Tensor:
    """log(beta * p + (1 - beta) * q), exact when ``log_p == log_q``.

    Written around the larger of the two terms, as
    ``log q + log1p(beta * expm1(log p - log q))`` (and its mirror), so
    that equal inputs give back ``log q`` bit for bit and gaps of 1e4 nats
    neither overflow nor leak NaN into the gradient of the unused branch.
    Where both are ``-inf`` the mixture is ``-inf`` too, computed from
    stand-in zeros so that no NaN reaches the gradient.
    """
    both = torch.isneginf(log_p) & torch.isneginf(log_q)
    if not bool(both.any()):
        return _log_mixture_of(log_p, log_q, beta)
    mixed = _log_mixture_of(
        log_p.masked_fill(both, 0.0), log_q.masked_fill(both, 0.0), beta
    )
    return mixed.masked_fill(both, -math.inf)


def _log_mixture_of(
    log_p: torch.Tensor, log_q: torch.Tensor, beta: float
) -> torch.Tensor:
    """:func:`_log_mixture` where ``log_p`` and ``log_q`` are not both
    ``-inf``."""
    d = log_p - log_q
    q_larger = log_q + torch.log1p(beta * torch.expm1(d.clamp(max=0.0)))
    p_larger = log_p + torch.log1p(
        (1.0 - beta) * torch.expm1((-d).clamp(max=0.0))
    )
    return torch.where(d <= 0, q_larger, p_larger)


def generalized_jsd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    beta: float = 0.5,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Generalised Jensen-Shannon divergence of on-policy distillation.

    Introduced in chapter 6. With teacher ``p``, student ``q`` (both at
    ``temperature``) and the mixture ``m = beta * p + (1 - beta) * q``::

        JSD_beta = beta * KL(p || m) + (1 - beta) * KL(q || m)

    summed over classes, in nats, averaged over the kept rows. For
    ``beta = 0.5`` this is the ordinary Jensen-Shannon divergence (at most
    ln 2).

    The ends. The formula above tends to 0 as ``beta`` goes to 0 or 1 (the
    mixture becomes one of the two distributions and the weight of the
    other term vanishes); to first order it is ``beta * KL(p || q)`` near 0
    and ``(1 - beta) * KL(q || p)`` near 1. So, as TRL's ``GKDTrainer`` does,
    the two ends are special-cased to the divergence that the interior
    approaches after dividing by that vanishing weight:

    - ``beta = 0`` returns exactly :func:`forward_kl`, KL(teacher ||
      student);
    - ``beta = 1`` returns exactly :func:`reverse_kl`, KL(student ||
      teacher).

    The value therefore jumps at the two ends (from about 0 to a full KL);
    compare losses across ``beta`` values with that in mind.

    Inside (0, 1) the divergence is finite even where one side has a logit
    of ``-inf`` (the mixture keeps the other side's mass); at the ends the
    rules of :func:`forward_kl` and :func:`reverse_kl` apply.

    Raises ``ValueError`` for ``beta`` outside [0, 1], ``temperature <= 0``
    and the shape errors of :func:`forward_kl`.
    """
    beta = probability("beta", beta)
    if beta == 0.0:
        return forward_kl(
            student_logits, teacher_logits, temperature=temperature, mask=mask
        )
    if beta == 1.0:
        return reverse_kl(
            student_logits, teacher_logits, temperature=temperature, mask=mask
        )
    student, teacher = _check_pair(student_logits, teacher_logits)
    temperature = positive_float("temperature", temperature)
    keep = _check_mask(mask, student.shape[:-1])
    s_rows, t_rows = _kept_rows(student, keep), _kept_rows(teacher, keep)
    _check_values("student_logits", s_rows)
    _check_values("teacher_logits", t_rows)

    log_q = _log_softmax(s_rows, temperature)  # (n, C)
    log_p = _log_softmax(t_rows, temperature)  # (n, C)
    log_m = _log_mixture(log_p, log_q, beta)  # (n, C)
    kl_p = _kl_terms(log_p, log_m)
    kl_q = _kl_terms(log_q, log_m)
    per_row = beta * kl_p.sum(-1) + (1.0 - beta) * kl_q.sum(-1)
    return _finite_loss(_mean_over_rows(per_row), "generalized_jsd is +inf")


def teacher_topk(
    teacher_logits: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's ``k`` largest log-probabilities and their ids.

    Introduced in chapter 6, to build the cache that :func:`topk_kl` reads.
    ``teacher_logits``: ``(..., vocab)``. Returns ``(logprobs, ids)``, both
    ``(..., k)``: log-probabilities of the full-vocabulary softmax (so their
    exponentials sum to at most 1) in float32, and long ids, both detached.
    """
    teacher = _float_tensor("teacher_logits", teacher_logits).detach()
    positive_int("k", k)
    _check_values("teacher_logits", teacher.reshape(-1, teacher.shape[-1]))
    if k > teacher.shape[-1]:
        raise ValueError(
            f"k must be at most the vocabulary size {teacher.shape[-1]}, "
            f"got {k}"
        )
    logprobs, ids = F.log_softmax(teacher, dim=-1).topk(k, dim=-1)
    return logprobs, ids


def _log_rest(log_top: torch.Tensor) -> torch.Tensor:
    """log(1 - sum(exp(log_top))) over the last axis: the tail's log-mass.

    ``expm1`` keeps a tiny tail accurate; the clamp turns an empty tail
    (or a rounding error below zero) into a very small positive mass, so
    the log and its gradient stay finite. A row of only ``-inf`` (no mass
    on the ``k`` ids) has a tail of 1, computed without NaN in the
    gradient.
    """
    none = torch.isneginf(log_top).all(-1)  # (n,)
    if bool(none.any()):
        top_mass_log = torch.logsumexp(
            log_top.masked_fill(none[:, None], 0.0), dim=-1
        ).masked_fill(none, -math.inf)  # (n,)
    else:
        top_mass_log = torch.logsumexp(log_top, dim=-1)  # (n,)
    rest = -torch.expm1(top_mass_log)
    return torch.log(rest.clamp(min=torch.finfo(torch.float32).tiny))


def topk_kl(
    student_logits: torch.Tensor,
    teacher_topk_logprobs: torch.Tensor,
    teacher_topk_ids: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    tail: bool = True,
) -> torch.Tensor:
    """KL from a cached top-k teacher to the student, in nats.

    Introduced in chapter 6. ``student_logits``: ``(..., vocab)``;
    ``teacher_topk_logprobs`` and ``teacher_topk_ids``: ``(..., k)``, the
    teacher's full-vocabulary log-probabilities at its ``k`` chosen ids (as
    :func:`teacher_topk` returns them); ``mask``: ``(...)``. The student's
    full-vocabulary log-softmax is read at the same ids.

    - ``tail=True``: the probability outside the ``k`` ids becomes one
      extra category on *both* sides, so this is the exact KL between two
      distributions over ``k + 1`` categories: never negative, and 0 when
      the student equals the teacher.
    - ``tail=False``: the teacher's ``k`` probabilities are renormalised to
      sum to 1 (its tail is treated as 0), and the loss is
      KL(renormalised teacher || student), i.e. the cross-entropy
      ``-sum_k p_k log q_k`` minus the teacher's entropy over the ``k``.
      It is still never negative, but it is 0 only when the student puts
      all its mass on the ``k`` ids; a student equal to the teacher scores
      ``-log(teacher's top-k mass)``.

    Logits and log-probabilities of ``-inf`` (probability 0) are allowed
    as in :func:`forward_kl`: the teacher's zeros add nothing, and a
    student zero where the teacher's probability is positive raises.

    Averaged over the kept rows. Raises ``ValueError`` when the shapes do
    not match, an id lies outside the vocabulary or repeats within a row,
    the ids are not integers (bool included), the log-probabilities sum to
    more than 1 (raw logits passed by mistake), a kept row holds NaN or
    ``+inf``, ``tail=False`` meets a row whose ``k`` log-probabilities are
    all ``-inf`` (nothing to renormalise), or the divergence is infinite.
    """
    student = _float_tensor("student_logits", student_logits)
    log_top_p = _float_tensor(
        "teacher_topk_logprobs", teacher_topk_logprobs
    ).detach()
    ids = _check_topk_ids(teacher_topk_ids, log_top_p, student)
    keep = _check_mask(mask, student.shape[:-1])

    log_top_p = _kept_rows(log_top_p, keep)  # (n, k)
    if bool(torch.isnan(log_top_p).any()):
        raise ValueError(
            "teacher_topk_logprobs holds NaN in a row that is kept"
        )
    ids = _kept_rows(ids, keep)  # (n, k)
    s_rows = _kept_rows(student, keep)  # (n, vocab)
    _check_values("student_logits", s_rows)
    log_q = F.log_softmax(s_rows, dim=-1)  # (n, vocab)
    log_top_q = log_q.gather(-1, ids)  # (n, k)

    if tail:
        log_p = torch.cat([log_top_p, _log_rest(log_top_p)[:, None]], -1)
        log_q_k = torch.cat([log_top_q, _log_rest(log_top_q)[:, None]], -1)
    else:
        if bool(torch.isneginf(log_top_p).all(-1).any()):
            raise ValueError(
                "teacher_topk_logprobs gives its k ids no probability "
                "(all -inf) in a kept row: with tail=False there is "
                "nothing to renormalise; use tail=True"
            )
        log_p = log_top_p - torch.logsumexp(log_top_p, -1, keepdim=True)
        log_q_k = log_top_q  # (n, k), with the student's tail left out
    per_row = _kl_terms(log_p, log_q_k)
    return _finite_loss(
        _mean_over_rows(per_row.sum(-1)),
        "topk_kl is +inf: in a kept row student_logits gives probability "
        "0 (a logit of -inf) to an id, or to the tail, that "
        "teacher_topk_logprobs gives positive probability",
    )


def _check_topk_ids(
    ids: object, log_top_p: torch.Tensor, student: torch.Tensor
) -> torch.Tensor:
    ids = long_tensor("teacher_topk_ids", ids)  # refuses float and bool
    if ids.shape != log_top_p.shape:
        raise ValueError(
            "teacher_topk_ids must have the shape of teacher_topk_logprobs, "
            f"{tuple(log_top_p.shape)}, got {tuple(ids.shape)}"
        )
    if ids.shape[:-1] != student.shape[:-1]:
        raise ValueError(
            "teacher_topk_logprobs must have the leading shape of "
            f"student_logits, {tuple(student.shape[:-1])}, got "
            f"{tuple(ids.shape[:-1])}"
        )
    vocab = student.shape[-1]
    if ids.shape[-1] > vocab:
        raise ValueError(
            f"teacher_topk_ids holds {ids.shape[-1]} ids per row, more than "
            f"the student's vocabulary of {vocab}"
        )
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError(
            f"teacher_topk_ids must lie in [0, {vocab - 1}] (the student's "
            f"vocabulary), got values from {int(ids.min())} to "
            f"{int(ids.max())}; if the teacher's vocabulary is larger, "
            "keep only the shared ids"
        )
    ordered = ids.sort(-1).values
    if bool((ordered[..., 1:] == ordered[..., :-1]).any()):
        raise ValueError("teacher_topk_ids must not repeat an id in a row")
    if log_top_p.numel():
        total = torch.logsumexp(log_top_p, dim=-1).max()
        if float(total) > 1e-3:
            raise ValueError(
                "teacher_topk_logprobs must be log-probabilities of the "
                "full-vocabulary softmax (their exponentials sum to at "
                f"most 1), but one row sums to {math.exp(float(total)):.4g};"
                " use teacher_topk(teacher_logits, k)"
            )
    return ids


# ------------------------------------------------- token-level helpers


def mask_from_labels(
    labels: torch.Tensor, *, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Bool mask ``(...)`` that keeps the labels not equal to -100.

    Introduced in chapter 6: turns Hugging Face style labels, where -100
    marks padding and prompt tokens, into the ``mask`` the losses take.
    ``labels`` must hold integer ids: float and bool tensors are refused.
    """
    labels = long_tensor("labels", labels)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(f"ignore_index must be an int, got {ignore_index!r}")
    return labels != ignore_index


def shift_for_next_token(
    logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Align causal-LM logits with the tokens they predict.

    Introduced in chapter 6. A causal language model's logits at position
    ``t`` predict token ``t + 1``. Given ``logits`` ``(..., time, vocab)``,
    the token ids or ``labels`` ``(..., time)`` of the same sequences and an
    attention ``mask`` ``(..., time)`` (1 for real tokens), returns
    ``(logits[..., :-1, :], labels[..., 1:], kept)``, each with ``time - 1``
    positions. ``kept`` keeps a prediction when both the token it reads and
    the token it predicts are real (and, when labels are given, the label
    is not -100); it is ``None`` when neither ``labels`` nor ``mask`` is
    given. Call it the same way on teacher and student logits so that both
    are compared at the same positions.
    """
    logits = _float_tensor("logits", logits)
    if logits.dim() < 2:
        raise ValueError(
            "logits must have shape (..., time, vocab), got "
            f"{tuple(logits.shape)}"
        )
    time = logits.shape[:-1]
    if time[-1] < 2:
        raise ValueError(
            "logits must cover at least 2 positions to predict a next "
            f"token, got shape {tuple(logits.shape)}"
        )
    shifted = logits[..., :-1, :]  # (..., time - 1, vocab)

    kept = None
    if mask is not None:
        mask = _check_mask(mask, time)
        kept = mask[..., 1:] & mask[..., :-1]  # (..., time - 1)
    next_labels = None
    if labels is not None:
        labels = long_tensor("labels", labels)  # refuses float and bool
        if labels.shape != time:
            raise ValueError(
                f"labels must have shape {tuple(time)} (the logits without "
                f"their vocab axis), got {tuple(labels.shape)}"
            )
        next_labels = labels[..., 1:]  # (..., time - 1)
        real = next_labels != IGNORE_INDEX
        kept = real if kept is None else kept & real
    return shifted, next_labels, kept
