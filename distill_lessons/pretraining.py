"""History compression as unsupervised pre-training (the 1991 two-stage idea).

Chapter 3 uses it in its section on pre-training. A predictor learns, with
no labels, to guess the next symbol of long redundant sequences and is then
frozen; a small classifier reads only the symbols the predictor failed to
predict (with a unit that says how long ago the previous one came) and
learns a long-lag classification that the same classifier fails to learn
from the raw symbols.

Every net here is really ``S`` independent nets, one per seed, with a
leading seed axis on every weight (:class:`SeedRNN`). Run ``k`` draws its
weights and its data from its own seed only, so ten seeds cost little more
than one and the result of one seed does not depend on the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from distill_lessons._checks import (
    generator,
    positive_float,
    positive_int,
    probability,
)
from distill_lessons.data import Vocabulary

__all__ = [
    "ZIF_SYMBOLS",
    "zif_vocabulary",
    "ZifBatch",
    "zif_sequences",
    "stacked_sequences",
    "SeedRNN",
    "train_predictors",
    "surprises",
    "compressed_inputs",
    "raw_inputs",
    "ClassifierRuns",
    "train_classifiers",
]

ZIF_SYMBOLS: tuple[str, ...] = ("a", "b", "e", "c", "d", "x")
"""Symbols of the task: ``a^n1 M c^n2 d`` with marker ``M`` in {b, e}.

``x`` is the optional noise symbol. Ids follow this order (``a`` is 0).
"""
A, B, E, C, D, X = range(6)
VOCAB = len(ZIF_SYMBOLS)

# Seeds of the different random streams of one run, so that the
# predictor's weights, its data, the classifier's weights, its data and
# the test set never share random numbers.
_ROLE = {"predictor": 0, "predictor data": 1, "classifier": 2}
_ROLE.update({"classifier data": 3, "test data": 4})


def _run_seed(seed: int, role: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seeds must be integers >= 0, got {seed!r}")
    return 1_000_003 * _ROLE[role] + seed


def _run_generator(seed: int, role: str) -> torch.Generator:
    return generator(_run_seed(seed, role))


def zif_vocabulary() -> Vocabulary:
    """The six symbols of :data:`ZIF_SYMBOLS`, as a :class:`Vocabulary`."""
    return Vocabulary(ZIF_SYMBOLS)


@dataclass(frozen=True)
class ZifBatch:
    """A padded batch of sequences ``a^n1 M c^n2 d`` and their classes.

    ``ids``: long ``(..., time)``, padded after the end with ``a`` (0);
    ``lengths``: long ``(...)``, the true lengths ``n1 + n2 + 2``;
    ``labels``: float ``(...)``, 1.0 when the marker was ``b``, else 0.0;
    ``marker_at``: long ``(...)``, the time step of the marker (``n1``).
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    marker_at: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """Bool ``(..., time)``: True on the steps inside each sequence."""
        steps = torch.arange(self.ids.shape[-1])
        return steps < self.lengths.unsqueeze(-1)


def _check_range(name: str, value) -> tuple[int, int]:
    try:
        low, high = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a pair (low, high) of integers, got {value!r}"
        ) from None
    if not 1 <= low <= high:
        raise ValueError(f"{name} must satisfy 1 <= low <= high, got {value}")
    return low, high


def zif_sequences(
    batch: int,
    *,
    first: tuple[int, int] = (20, 100),
    second: tuple[int, int] = (30, 100),
    noise: float = 0.0,
    seed: int | torch.Generator,
) -> ZifBatch:
    """A batch of ``a^n1 M c^n2 d``: the class is the marker far back.

    ``n1`` and ``n2`` are drawn uniformly from the inclusive ranges
    ``first`` and ``second``; the marker ``M`` is ``b`` or ``e`` by a fair
    coin. So the class is decided ``n2 + 1`` steps before the end, and all
    other symbols are predictable except where a run of ``a`` or ``c`` ends.
    With ``noise > 0`` each ``a`` after the first and each ``c`` is, with
    that probability, replaced by ``x``: unpredictable distractors.

    Returns a :class:`ZifBatch` with ``ids`` of shape ``(batch, time)``,
    ``time`` the longest length drawn. Raises ``ValueError`` for a batch
    below 1, a noise outside [0, 1] or a malformed range.
    """
    positive_int("batch", batch)
    lo1, hi1 = _check_range("first", first)
    lo2, hi2 = _check_range("second", second)
    probability("noise", noise)
    g = generator(seed)

    n1 = torch.randint(lo1, hi1 + 1, (batch,), generator=g)
    n2 = torch.randint(lo2, hi2 + 1, (batch,), generator=g)
    is_b = torch.rand(batch, generator=g) < 0.5
    lengths = n1 + n2 + 2
    t = torch.arange(int(lengths.max()))[None, :]  # (1, time)
    n1c, endc = n1[:, None], (n1 + n2 + 1)[:, None]

    ids = torch.full((batch, t.shape[1]), A, dtype=torch.long)
    marker = torch.where(is_b, B, E)[:, None].expand_as(ids)
    ids = torch.where(t == n1c, marker, ids)
    ids = torch.where((t > n1c) & (t < endc), C, ids)
    ids = torch.where(t == endc, D, ids)
    if noise > 0:
        inner = ((t > 0) & (t < n1c)) | ((t > n1c) & (t < endc))
        flip = torch.rand(ids.shape, generator=g) < noise
        ids = torch.where(inner & flip, X, ids)
    return ZifBatch(ids, lengths, is_b.float(), n1)


def stacked_sequences(
    generators: Sequence[torch.Generator], batch: int, **task
) -> ZifBatch:
    """One batch per generator, padded to a common length and stacked.

    Returns a :class:`ZifBatch` whose fields have a leading run axis:
    ``ids`` ``(runs, batch, time)``. ``task`` goes to :func:`zif_sequences`.
    """
    parts = [zif_sequences(batch, seed=g, **task) for g in generators]
    time = max(p.ids.shape[1] for p in parts)
    ids = torch.stack(
        [F.pad(p.ids, (0, time - p.ids.shape[1])) for p in parts]
    )
    return ZifBatch(
        ids,  # (runs, batch, time)
        torch.stack([p.lengths for p in parts]),
        torch.stack([p.labels for p in parts]),
        torch.stack([p.marker_at for p in parts]),
    )


class SeedRNN(nn.Module):
    """``S`` independent tanh RNNs with a linear read-out, run side by side.

    Every weight has a leading axis of size ``S = len(seeds)``; run ``k``
    draws its weights (uniform in +-1/sqrt(hidden)) from ``seeds[k]``. The
    forward pass uses batched matrix products, so the runs never mix: a
    loss summed over runs gives each run exactly its own gradient.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        input_size: int,
        hidden_size: int,
        output_size: int,
    ):
        super().__init__()
        seeds = list(seeds)
        if not seeds:
            raise ValueError("seeds must hold at least one seed, got none")
        positive_int("input_size", input_size)
        positive_int("hidden_size", hidden_size)
        positive_int("output_size", output_size)
        self.seeds = seeds
        self.hidden_size = hidden_size
        shapes = {
            "w_in": (input_size, hidden_size),
            "w_hh": (hidden_size, hidden_size),
            "b_h": (hidden_size,),
            "w_out": (hidden_size, output_size),
            "b_out": (output_size,),
        }
        bound = hidden_size**-0.5
        per_run = {name: [] for name in shapes}
        for s in seeds:
            g = generator(s)
            for name, shape in shapes.items():
                u = torch.rand(shape, generator=g)
                per_run[name].append((2 * u - 1) * bound)
        for name in shapes:
            self.register_parameter(
                name, nn.Parameter(torch.stack(per_run[name]))
            )

    @property
    def runs(self) -> int:
        """How many independent nets this holds (``S``)."""
        return len(self.seeds)

    def hidden_states(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """States ``(S, batch, time, hidden)`` for inputs ``(S, batch, time,
        input)``.

        Where ``mask`` ``(S, batch, time)`` is False the state is carried
        over unchanged, so the last state is the state at each sequence's
        last valid step.
        """
        if x.dim() != 4 or x.shape[0] != self.runs:
            raise ValueError(
                f"x must have shape ({self.runs}, batch, time, input), "
                f"got {tuple(x.shape)}"
            )
        runs, batch, time, _ = x.shape
        drive = torch.bmm(x.reshape(runs, batch * time, -1), self.w_in)
        drive = drive.reshape(runs, batch, time, -1) + self.b_h[:, None, None]
        h = x.new_zeros(runs, batch, self.hidden_size)
        states = []
        for t in range(time):
            new = torch.tanh(torch.baddbmm(drive[:, :, t], h, self.w_hh))
            h = (
                new
                if mask is None
                else torch.where(mask[..., t, None], new, h)
            )
            states.append(h)
        return torch.stack(states, dim=2)  # (S, batch, time, hidden)

    def read_out(self, h: torch.Tensor) -> torch.Tensor:
        """Outputs ``(S, n..., output)`` of states ``(S, n..., hidden)``."""
        flat = h.reshape(self.runs, -1, self.hidden_size)
        out = torch.bmm(flat, self.w_out) + self.b_out[:, None]
        return out.reshape(*h.shape[:-1], -1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Outputs ``(S, batch, time, output)`` at every step."""
        return self.read_out(self.hidden_states(x, mask))

    def clip_per_run_(self, max_norm: float) -> torch.Tensor:
        """Scale each run's gradient to norm <= ``max_norm``; return norms."""
        sq = sum(
            p.grad.pow(2).flatten(1).sum(1)
            for p in self.parameters()
            if p.grad is not None
        )
        norms = sq.sqrt()  # (S,)
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for p in self.parameters():
            if p.grad is not None:
                p.grad.mul_(scale.view(-1, *([1] * (p.dim() - 1))))
        return norms


def _one_hot(ids: torch.Tensor) -> torch.Tensor:
    return F.one_hot(ids, VOCAB).float()


def train_predictors(
    seeds: Sequence[int],
    *,
    hidden_size: int = 16,
    steps: int = 100,
    batch_size: int = 32,
    lr: float = 1e-2,
    progress: bool = False,
    **task,
) -> SeedRNN:
    """Stage 1: one next-symbol predictor per seed, trained without labels.

    Each step draws ``batch_size`` fresh sequences per run (options
    ``task`` go to :func:`zif_sequences`) and minimises the cross-entropy
    of every next symbol inside each sequence (nats), with full
    backpropagation through time. The class label is never used. Returns
    the predictors, frozen (``requires_grad`` off, eval mode).
    """
    positive_int("steps", steps)
    positive_int("batch_size", batch_size)
    positive_float("lr", lr)
    net = SeedRNN(
        [_run_seed(s, "predictor") for s in seeds],
        VOCAB,
        hidden_size,
        VOCAB,
    )
    gens = [_run_generator(s, "predictor data") for s in seeds]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in tqdm(range(steps), desc="predictors", disable=not progress):
        data = stacked_sequences(gens, batch_size, **task)
        mask = data.mask
        logits = net(_one_hot(data.ids[..., :-1]), mask[..., :-1])
        # (S, batch, time - 1, vocab): logits at t predict the symbol at t+1
        nll = F.cross_entropy(
            logits.flatten(0, 2), data.ids[..., 1:].flatten(), reduction="none"
        ).view_as(mask[..., 1:])
        keep = mask[..., 1:].float()
        loss = ((nll * keep).flatten(1).sum(1) / keep.flatten(1).sum(1)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        net.clip_per_run_(1.0)
        opt.step()
    net.requires_grad_(False)
    return net.eval()


@torch.no_grad()
def surprises(predictor: SeedRNN, data: ZifBatch) -> torch.Tensor:
    """Which steps ``predictor`` passes on, as bool ``(S, batch, time)``.

    A step is passed on when it is the first step, when the predictor's
    most likely next symbol (argmax of its output one step earlier) is not
    the symbol that came, or when it is the last step of its sequence. The
    last step is always passed on so that the classifier is read out at the
    end of every sequence; with random lengths the end symbol ``d`` is
    nearly always a surprise anyway.
    """
    if data.ids.dim() != 3 or data.ids.shape[0] != predictor.runs:
        raise ValueError(
            f"data.ids must have shape ({predictor.runs}, batch, time), "
            f"got {tuple(data.ids.shape)}"
        )
    mask = data.mask
    guess = predictor(_one_hot(data.ids), mask).argmax(-1)  # (S, B, T)
    events = torch.ones_like(mask)
    events[..., 1:] = guess[..., :-1] != data.ids[..., 1:]
    last = (data.lengths - 1).unsqueeze(-1)  # (S, batch, 1)
    events.scatter_(-1, last, True)
    return events & mask


def compressed_inputs(
    events: torch.Tensor, data: ZifBatch, *, tau: float = 20.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The event stream a classifier reads: symbols plus a time unit.

    ``events``: bool ``(S, batch, time)`` from :func:`surprises`. Event
    ``j`` of a sequence is the one-hot symbol at that step, followed by one
    unit ``exp(-dt / tau)``, where ``dt`` is the number of raw steps since
    the previous event (0 for the first event, so the unit starts at 1).
    This is a unit that decays between surprises and is reset to 1 at
    each one, read at the moment of the next surprise.

    Returns ``(inputs, counts)``: ``inputs`` float ``(S, batch, events,
    vocab + 1)``, zero-padded after each sequence's last event, and
    ``counts`` long ``(S, batch)``, the number of events.
    """
    positive_float("tau", tau)
    counts = events.sum(-1)  # (S, batch)
    width = int(counts.max())
    slot = (events.cumsum(-1) - 1).clamp(min=0)  # event index of each step
    slot = torch.where(events, slot, width)  # non-events go to a spare slot
    steps = torch.arange(events.shape[-1]).expand_as(data.ids)

    shape = (*counts.shape, width + 1)
    times = torch.zeros(shape, dtype=torch.long).scatter_(-1, slot, steps)
    symbols = torch.zeros(shape, dtype=torch.long).scatter_(-1, slot, data.ids)
    times, symbols = times[..., :width], symbols[..., :width]
    gaps = torch.diff(times, dim=-1, prepend=times[..., :1])
    unit = torch.exp(-gaps.float() / tau)

    inputs = torch.cat([_one_hot(symbols), unit.unsqueeze(-1)], dim=-1)
    valid = torch.arange(width) < counts.unsqueeze(-1)
    return inputs * valid.unsqueeze(-1), counts


def raw_inputs(data: ZifBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Every raw step as input, with the time unit held at 0.

    Returns ``(inputs, lengths)`` with ``inputs`` float ``(S, batch, time,
    vocab + 1)``, the same width as :func:`compressed_inputs`.
    """
    inputs = F.pad(_one_hot(data.ids), (0, 1)) * data.mask.unsqueeze(-1)
    return inputs, data.lengths


@dataclass
class ClassifierRuns:
    """What :func:`train_classifiers` measured, one row per seed.

    ``sequences``: the number of training sequences seen at each evaluation
    (per run); ``accuracy``: ``(S, evaluations)`` test accuracy on fixed
    fresh sequences; ``threshold``: the accuracy that counts as solved;
    ``steps_per_sequence``: mean steps each classifier read per sequence.
    """

    seeds: list[int]
    sequences: list[int]
    accuracy: torch.Tensor
    threshold: float
    steps_per_sequence: float

    @property
    def solved(self) -> torch.Tensor:
        """Bool ``(S,)``: accuracy >= threshold at some evaluation and at
        every later one."""
        return torch.tensor([n is not None for n in self.sequences_to_solve])

    @property
    def sequences_to_solve(self) -> list[int | None]:
        """Per run, the training sequences at the first evaluation from
        which it stayed solved, or ``None`` if it never did."""
        above = (self.accuracy >= self.threshold).int()
        # tail_all[k, i]: run k is above threshold at evaluation i and later
        tail_all = above.flip(-1).cummin(-1).values.flip(-1).bool()
        out: list[int | None] = []
        for row in tail_all:
            hits = row.nonzero()
            out.append(self.sequences[int(hits[0])] if len(hits) else None)
        return out

    @property
    def final_accuracy(self) -> torch.Tensor:
        """Test accuracy ``(S,)`` at the last evaluation."""
        return self.accuracy[:, -1]


def _classifier_inputs(predictor, data, tau):
    if predictor is None:
        inputs, lengths = raw_inputs(data)
    else:
        inputs, lengths = compressed_inputs(
            surprises(predictor, data), data, tau=tau
        )
    mask = torch.arange(inputs.shape[2]) < lengths.unsqueeze(-1)
    return inputs, mask, lengths


def train_classifiers(
    seeds: Sequence[int],
    *,
    predictor: SeedRNN | None = None,
    hidden_size: int = 8,
    sequences: int = 10_000,
    batch_size: int = 32,
    lr: float = 1e-2,
    eval_every: int = 25,
    eval_size: int = 512,
    threshold: float = 0.95,
    tau: float = 20.0,
    progress: bool = False,
    **task,
) -> ClassifierRuns:
    """Stage 2: one sequence classifier per seed, on compressed or raw input.

    With a (frozen) ``predictor`` from :func:`train_predictors`, each
    classifier reads only the events of :func:`compressed_inputs`; with
    ``predictor=None`` it reads every raw step (:func:`raw_inputs`). Either
    way it is the same tanh RNN (``vocab + 1`` inputs, ``hidden_size``
    units, one sigmoid output read after the last input), trained with the
    same optimiser on the same number of ``sequences`` per run, drawn fresh
    in batches of ``batch_size``. Every ``eval_every`` updates it is scored
    on ``eval_size`` fixed fresh sequences per run.
    """
    positive_int("sequences", sequences)
    positive_int("batch_size", batch_size)
    positive_int("eval_every", eval_every)
    positive_int("eval_size", eval_size)
    probability("threshold", threshold)
    seeds = list(seeds)
    if predictor is not None and predictor.runs != len(seeds):
        raise ValueError(
            f"predictor holds {predictor.runs} runs but seeds has {len(seeds)}"
        )
    steps = math.ceil(sequences / batch_size)
    net = SeedRNN(
        [_run_seed(s, "classifier") for s in seeds],
        VOCAB + 1,
        hidden_size,
        1,
    )
    gens = [_run_generator(s, "classifier data") for s in seeds]
    test = stacked_sequences(
        [_run_generator(s, "test data") for s in seeds], eval_size, **task
    )
    test_x, test_mask, test_len = _classifier_inputs(predictor, test, tau)
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def final_logit(x, mask):
        h = net.hidden_states(x, mask)[:, :, -1]  # (S, batch, hidden)
        return net.read_out(h)[..., 0]  # (S, batch)

    seen, accs, read = [], [], []
    for step in tqdm(range(steps), desc="classifiers", disable=not progress):
        data = stacked_sequences(gens, batch_size, **task)
        x, mask, lengths = _classifier_inputs(predictor, data, tau)
        read.append(lengths.float().mean())
        loss = F.binary_cross_entropy_with_logits(
            final_logit(x, mask), data.labels, reduction="none"
        )
        opt.zero_grad(set_to_none=True)
        loss.mean(1).sum().backward()
        net.clip_per_run_(1.0)
        opt.step()
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            with torch.no_grad():
                guess = final_logit(test_x, test_mask) > 0
            accs.append((guess == (test.labels > 0.5)).float().mean(1))
            seen.append((step + 1) * batch_size)
    return ClassifierRuns(
        list(seeds),
        seen,
        torch.stack(accs, dim=1),
        threshold,
        float(torch.stack(read).mean()),
    )
