"""The 1991 neural sequence chunker, its hierarchy, and its collapse.

Chapter 3 introduces the multi-level history compressor
(:class:`HistoryCompressor`) and the long-lag experiment of the 1992 paper
(:func:`train_long_lag`); chapter 4 collapses the chunker into the
automatiser (the imitation term of :class:`LongLagSystem`) and measures
what the automatiser forgets without rehearsal (:func:`forgetting_run`).

Many seeds train at once: every weight carries a leading seed dimension
``S`` and the nets multiply with ``torch.bmm``, so ten independent runs cost
little more than one. Losses are averaged over a seed's batch and summed
over seeds, Adam is elementwise and clipping is done per seed, so each seed
follows exactly the run it would follow alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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
from distill_lessons.compression import Compressed, compress, decompress
from distill_lessons.data import long_lag_episodes

__all__ = [
    "CELL_TYPES",
    "SeedLinear",
    "SeedCell",
    "unroll",
    "truncated_states",
    "LongLagConfig",
    "LongLagSystem",
    "LongLagResult",
    "train_long_lag",
    "two_family_episodes",
    "ForgettingResult",
    "forgetting_run",
    "solved_at",
    "sentence_stream",
    "HistoryCompressor",
]

log = logging.getLogger(__name__)

CELL_TYPES = ("rnn", "gru", "lstm")
"""Recurrent cells the chunker's nets accept (``rnn`` is tanh)."""

_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def _uniform(shape, bound: float, g: torch.Generator) -> nn.Parameter:
    return nn.Parameter(torch.rand(shape, generator=g) * 2 * bound - bound)


def _check_cell(cell: object) -> str:
    if cell not in CELL_TYPES:
        raise ValueError(f"cell must be one of {CELL_TYPES}, got {cell!r}")
    return cell  # type: ignore[return-value]


def _int_seed(seed: int | torch.Generator) -> int:
    """An int seed unchanged, or a fresh int drawn from a ``Generator``."""
    if isinstance(seed, torch.Generator):
        return int(torch.randint(0, 2**31 - 1, (1,), generator=seed))
    generator(seed)  # refuses what is neither an int nor a Generator
    return seed


def _flag(name: str, value: object) -> bool:
    """``value`` if it is a real bool (``"no"`` is truthy, so refused)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _finite_number(name: str, value: object, *, low: float | None = None):
    """``value`` as a float if it is a finite number (``>= low``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return float(value)


def _check_truncation(truncation: object) -> int | None:
    if truncation is None:
        return None
    if (
        isinstance(truncation, bool)
        or not isinstance(truncation, int)
        or truncation < 1
    ):
        raise ValueError(
            "truncation must be an integer >= 1 (steps of backpropagation) "
            f"or None for full BPTT, got {truncation!r}"
        )
    return truncation


class SeedLinear(nn.Module):
    """``S`` independent linear maps, one per seed.

    ``forward(x)``: ``x`` of shape ``(S, ..., n_in)`` to ``(S, ..., n_out)``.
    Weights are uniform in +-1/sqrt(n_in), PyTorch's default range.
    """

    def __init__(
        self, seeds: int, n_in: int, n_out: int, *, seed: torch.Generator
    ):
        super().__init__()
        bound = n_in**-0.5
        self.weight = _uniform((seeds, n_in, n_out), bound, seed)
        self.bias = _uniform((seeds, 1, n_out), bound, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1, x.shape[-1])  # (S, N, n_in)
        out = torch.baddbmm(self.bias, flat, self.weight)  # (S, N, n_out)
        return out.reshape(*x.shape[:-1], self.weight.shape[-1])


class SeedCell(nn.Module):
    """A recurrent cell (tanh, GRU or LSTM) with one set of weights per seed.

    The input is a one-hot symbol, optionally with ``extra`` real-valued
    units beside it (a target code, a time code). Because a one-hot vector
    times a matrix picks one row, :meth:`project` looks the rows up instead
    of multiplying. The state is one tensor ``(S, N, state_size)``: the
    hidden units, and for the LSTM the cell units after them.

    ``forget_bias`` is added to the LSTM's forget gate, so that at the start
    the cell keeps its memory (the usual trick; 1 is PyTorch-style common).
    """

    def __init__(
        self,
        seeds: int,
        vocab_size: int,
        hidden_size: int,
        *,
        cell: str = "rnn",
        extra: int = 0,
        forget_bias: float = 1.0,
        seed: torch.Generator,
    ):
        super().__init__()
        positive_int("seeds", seeds)
        positive_int("vocab_size", vocab_size)
        positive_int("hidden_size", hidden_size)
        non_negative_int("extra", extra)
        self.cell = _check_cell(cell)
        self.seeds = seeds
        self.hidden_size = hidden_size
        self.forget_bias = float(forget_bias)
        width = _GATES[cell] * hidden_size
        bound = hidden_size**-0.5
        self.embed = _uniform((seeds, vocab_size, width), bound, seed)
        self.extra = (
            _uniform((seeds, extra, width), bound, seed) if extra else None
        )
        self.w_hh = _uniform((seeds, hidden_size, width), bound, seed)
        self.bias = _uniform((seeds, 1, width), bound, seed)

    @property
    def state_size(self) -> int:
        """Width of the state: hidden units (and LSTM cell units)."""
        return self.hidden_size * (2 if self.cell == "lstm" else 1)

    def initial(self, *batch: int) -> torch.Tensor:
        """The all-zero state ``(S, *batch, state_size)``."""
        return torch.zeros(self.seeds, *batch, self.state_size)

    def hidden(self, state: torch.Tensor) -> torch.Tensor:
        """The hidden units ``(S, ..., hidden)`` of a state."""
        return state[..., : self.hidden_size]

    def project(
        self, ids: torch.Tensor, extras: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Input contribution to the gates, ``(S, ..., gates * hidden)``.

        ``ids``: ``(S, ...)`` symbol ids; ``extras``: ``(S, ..., extra)``.
        """
        flat = ids.reshape(self.seeds, -1)  # (S, N)
        rows = torch.arange(self.seeds)[:, None]
        out = self.embed[rows, flat] + self.bias  # (S, N, width)
        if self.extra is not None:
            if extras is None:
                raise ValueError("extras must be given: the cell has extras")
            e = extras.reshape(self.seeds, -1, extras.shape[-1])
            out = out + torch.bmm(e, self.extra)
        return out.reshape(*ids.shape, -1)

    def forward(self, proj: torch.Tensor, state: torch.Tensor):
        """One step: projected input ``(S, N, width)``, state ``(S, N, D)``.

        Returns the new state, same shape as ``state``.
        """
        hsz = self.hidden_size
        h = state[..., :hsz]
        rec = torch.bmm(h, self.w_hh)  # (S, N, width)
        if self.cell == "rnn":
            return torch.tanh(proj + rec)
        if self.cell == "gru":
            r = torch.sigmoid(proj[..., :hsz] + rec[..., :hsz])
            z = torch.sigmoid(
                proj[..., hsz : 2 * hsz] + rec[..., hsz : 2 * hsz]
            )
            n = torch.tanh(proj[..., 2 * hsz :] + r * rec[..., 2 * hsz :])
            return (1 - z) * n + z * h
        gates = proj + rec
        i = torch.sigmoid(gates[..., :hsz])
        f = torch.sigmoid(gates[..., hsz : 2 * hsz] + self.forget_bias)
        g = torch.tanh(gates[..., 2 * hsz : 3 * hsz])
        o = torch.sigmoid(gates[..., 3 * hsz :])
        c = f * state[..., hsz:] + i * g
        return torch.cat([o * torch.tanh(c), c], dim=-1)


def unroll(
    cell: SeedCell,
    proj: torch.Tensor,
    state: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run ``cell`` over time with full backpropagation through time.

    ``proj``: ``(S, B, T, width)`` from :meth:`SeedCell.project`;
    ``state``: ``(S, B, D)``. Where ``mask`` ``(S, B, T)`` is False the state
    is carried over unchanged (a gated net that only ticks at events).
    Returns the states after each step, ``(S, B, T, D)``.
    """
    out = []
    for t in range(proj.shape[2]):
        new = cell(proj[:, :, t], state)
        if mask is not None:
            new = torch.where(mask[:, :, t, None], new, state)
        state = new
        out.append(state)
    return torch.stack(out, dim=2)


def truncated_states(
    cell: SeedCell, proj: torch.Tensor, state: torch.Tensor, k: int
) -> torch.Tensor:
    """States ``(S, B, T, D)`` whose gradient reaches back exactly ``k`` steps.

    Truncated BPTT(k), done for all time steps at once. A pass without
    gradient stores every state; then for each step ``t`` a window of ``k``
    cell applications is recomputed from the stored (detached) state at
    ``t - k``. All ``T`` windows run side by side as one batch, so the cost
    is one cheap forward pass plus ``k`` batched steps. A loss on the state
    at ``t`` therefore sends gradient to the inputs ``t - k + 1 .. t`` and
    no further, exactly as a per-step loop would.
    """
    k = _check_truncation(k)
    seeds, batch, steps, width = proj.shape
    with torch.no_grad():
        stored = unroll(cell, proj.detach(), state)  # (S, B, T, D)
    start = state.detach()[:, :, None].expand(seeds, batch, k, -1)
    starts = torch.cat([start, stored], dim=2)[:, :, :steps]  # t - k
    h = starts.reshape(seeds, batch * steps, -1)
    times = torch.arange(steps)
    for j in range(k):
        tau = times - k + 1 + j  # the input step this application reads
        valid = (tau >= 0).repeat(batch)[None, :, None]  # (1, B*T, 1)
        p = proj[:, :, tau.clamp(min=0)].reshape(seeds, batch * steps, width)
        h = torch.where(valid, cell(p, h), h)
    return h.reshape(seeds, batch, steps, -1)


def _clip_per_seed(params: Sequence[nn.Parameter], max_norm: float):
    """Scale each seed's gradient so its norm is at most ``max_norm``."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    sq = sum(g.pow(2).reshape(g.shape[0], -1).sum(1) for g in grads)  # (S,)
    scale = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))


@dataclass
class LongLagConfig:
    """Settings of one long-lag run (chapter 3 and 4 defaults).

    ``truncation`` is k of the automatiser's truncated BPTT (``None``: full
    BPTT). ``imitation`` is the weight lambda of the imitation term.
    ``chunker=False`` gives the plain recurrent baseline. ``tolerance``: the
    automatiser "missed" the target when ``|sigmoid(logit) - d| >`` it.
    """

    lag: int = 20
    batch: int = 16
    hidden: int = 16
    chunker_hidden: int = 16
    cell: str = "rnn"
    truncation: int | None = 3
    chunker: bool = True
    imitation: float = 10.0
    lr: float = 1e-2
    clip: float = 1.0
    tolerance: float = 0.4
    noise: float = 0.0
    forget_bias: float = 1.0
    time_code: bool = False
    vocab_size: int | None = None

    def check(self) -> LongLagConfig:
        """Raise ``ValueError`` naming the first bad setting."""
        positive_int("lag", self.lag)
        positive_int("batch", self.batch)
        positive_int("hidden", self.hidden)
        positive_int("chunker_hidden", self.chunker_hidden)
        _check_cell(self.cell)
        _check_truncation(self.truncation)
        _flag("chunker", self.chunker)
        _flag("time_code", self.time_code)
        _finite_number("imitation", self.imitation, low=0)
        _finite_number("forget_bias", self.forget_bias)
        positive_float("lr", self.lr)
        positive_float("clip", self.clip)
        probability("tolerance", self.tolerance)
        probability("noise", self.noise)
        if self.vocab_size is not None:
            positive_int("vocab_size", self.vocab_size)
            if self.vocab_size < self.lag + 2:
                raise ValueError(
                    f"vocab_size must be >= lag + 2 = {self.lag + 2}, "
                    f"got {self.vocab_size}"
                )
        return self


@dataclass
class StepRecord:
    """What one forward pass over a batch computed (all per seed).

    ``target_logit``: ``(S, B)``; ``events``: bool ``(S, B, T)``, the steps
    passed to the chunker; ``chunker_logit``: ``(S, B)``, the chunker's
    target prediction; ``hidden``: the automatiser's hidden states
    ``(S, B, T, H)``; ``chunker_hidden``: the chunker's ``(S, B, T, HC)``
    at raw time (it holds still between events).
    """

    target_logit: torch.Tensor
    next_logits: torch.Tensor
    events: torch.Tensor | None = None
    chunker_logit: torch.Tensor | None = None
    hidden: torch.Tensor | None = None
    chunker_hidden: torch.Tensor | None = None
    losses: dict[str, torch.Tensor] = field(default_factory=dict)


class LongLagSystem(nn.Module):
    """The automatiser A and chunker C of 1991, for ``S`` seeds at once.

    A reads every symbol and has three heads on its hidden state: the next
    symbol, the target (a logit, read after the last symbol) and the
    imitation head, which predicts C's hidden state (squared error, C's
    state detached, weight ``config.imitation``). A learns with truncated
    BPTT of ``config.truncation`` steps.

    C ticks only at A's unexpected events: the first symbol, every symbol A
    mispredicted (argmax rule), and the last step if A missed the target.
    At an event C is trained to predict the event's symbol (and at the last
    step the target) from its state before the event, and then reads it.
    The events are packed together, so C's backpropagation runs through
    events only, however long the raw gap between them.

    With ``config.chunker = False`` this is the plain recurrent baseline:
    A alone, with its next-symbol and target heads.
    """

    def __init__(self, config: LongLagConfig, *, seeds: int, seed):
        super().__init__()
        self.config = config.check()
        positive_int("seeds", seeds)
        g = generator(seed)
        self.seeds = seeds
        c = config
        self.vocab_size = c.vocab_size or c.lag + 2
        v, h, hc = self.vocab_size, c.hidden, c.chunker_hidden
        self.a_cell = SeedCell(
            seeds, v, h, cell=c.cell, forget_bias=c.forget_bias, seed=g
        )
        self.a_next = SeedLinear(seeds, h, v, seed=g)
        self.a_target = SeedLinear(seeds, h, 1, seed=g)
        self.a_params = [
            *self.a_cell.parameters(),
            *self.a_next.parameters(),
            *self.a_target.parameters(),
        ]
        self.c_params: list[nn.Parameter] = []
        if c.chunker:
            self.a_imitate = SeedLinear(seeds, h, hc, seed=g)
            self.a_params += list(self.a_imitate.parameters())
            # C's extra inputs: a two-unit code of the target (only at the
            # last step, and only when A missed it), and a time code.
            extra = 2 + int(c.time_code)
            self.c_cell = SeedCell(
                seeds, v, hc, cell="rnn", extra=extra, seed=g
            )
            self.c_next = SeedLinear(seeds, hc, v, seed=g)
            self.c_target = SeedLinear(seeds, hc, 1, seed=g)
            self.c_params = [
                *self.c_cell.parameters(),
                *self.c_next.parameters(),
                *self.c_target.parameters(),
            ]
        self.opt_a = torch.optim.Adam(self.a_params, lr=c.lr)
        self.opt_c = (
            torch.optim.Adam(self.c_params, lr=c.lr) if c.chunker else None
        )

    # -- forward -------------------------------------------------------
    def _automatiser(self, symbols: torch.Tensor, truncation):
        proj = self.a_cell.project(symbols)  # (S, B, T, width)
        start = self.a_cell.initial(symbols.shape[1])
        if truncation is None:
            states = unroll(self.a_cell, proj, start)
        else:
            states = truncated_states(self.a_cell, proj, start, truncation)
        return self.a_cell.hidden(states)  # (S, B, T, H)

    def _chunker(
        self, symbols: torch.Tensor, events: torch.Tensor, target_code
    ):
        """C over the packed events.

        Returns C's states on raw time ``(S, B, T, HC)`` (held still between
        events), its states per event ``(S, B, E, HC)``, the event symbols
        ``(S, B, E)`` and which of the ``E`` slots are real ``(S, B, E)``.
        """
        seeds, batch, steps = symbols.shape
        extras = [target_code]
        if self.config.time_code:
            t = torch.arange(steps) / max(steps - 1, 1)
            extras.append(t.expand(seeds, batch, steps)[..., None])
        proj = self.c_cell.project(symbols, torch.cat(extras, -1))
        # Stable sort puts each episode's events first, in time order.
        order = torch.sort((~events).int(), dim=2, stable=True).indices
        count = events.sum(2)  # (S, B)
        n_max = int(count.max())
        order = order[:, :, :n_max]
        packed = proj.gather(
            2, order[..., None].expand(-1, -1, -1, proj.shape[-1])
        )  # (S, B, E, width)
        valid = torch.arange(n_max) < count[..., None]  # (S, B, E)
        states = unroll(
            self.c_cell, packed, self.c_cell.initial(batch), valid
        )  # (S, B, E, HC)
        # At raw step t C holds the state after its latest event <= t.
        latest = (events.long().cumsum(2) - 1).clamp(min=0)  # (S, B, T)
        raw = states.gather(
            2, latest[..., None].expand(-1, -1, -1, states.shape[-1])
        )  # (S, B, T, HC)
        return raw, states, symbols.gather(2, order), valid

    def forward_batch(
        self,
        symbols: torch.Tensor,
        targets: torch.Tensor,
        *,
        truncation: int | None | str = "config",
        imitate: bool = True,
    ) -> StepRecord:
        """Run both nets on a batch and compute every loss (per seed, summed).

        ``symbols``: ``(S, B, T)`` ids; ``targets``: ``(S, B)`` in {0, 1}.
        ``truncation="config"`` uses the configured k; ``None`` is full BPTT
        (used for evaluation, where no gradient is taken).
        """
        c = self.config
        k = c.truncation if truncation == "config" else truncation
        d = targets.float()
        hid = self._automatiser(symbols, k)
        next_logits = self.a_next(hid[:, :, :-1])  # (S, B, T-1, V)
        target_logit = self.a_target(hid[:, :, -1])[..., 0]  # (S, B)
        nxt = symbols[:, :, 1:]
        ce = F.cross_entropy(
            next_logits.reshape(-1, self.vocab_size),
            nxt.reshape(-1),
            reduction="none",
        ).view(nxt.shape)
        bce = F.binary_cross_entropy_with_logits(
            target_logit, d, reduction="none"
        )
        losses = {
            "next": ce.mean((1, 2)).sum(),
            "target": bce.mean(1).sum(),
        }
        rec = StepRecord(target_logit, next_logits, hidden=hid, losses=losses)
        if not c.chunker:
            return rec

        with torch.no_grad():
            missed = next_logits.argmax(-1) != nxt  # (S, B, T-1)
            p = torch.sigmoid(target_logit)
            missed_target = (p - d).abs() > c.tolerance  # (S, B)
            events = torch.cat([torch.ones_like(missed[:, :, :1]), missed], 2)
            events[:, :, -1] |= missed_target
        code = torch.zeros(*symbols.shape, 2)
        code[:, :, -1] = F.one_hot(targets, 2).float()
        code[:, :, -1] *= missed_target[..., None].float()
        hc, packed, ev_sym, valid = self._chunker(symbols, events, code)

        # C predicts each event from its state after the previous event.
        # Only events cost anything, however long the raw gaps between them.
        c_logits = self.c_next(packed[:, :, :-1])  # (S, B, E-1, V)
        c_ce = F.cross_entropy(
            c_logits.reshape(-1, self.vocab_size),
            ev_sym[:, :, 1:].reshape(-1),
            reduction="none",
        ).view(ev_sym[:, :, 1:].shape)
        ev = valid[:, :, 1:].float()
        losses["chunker_next"] = (
            (c_ce * ev).sum((1, 2)) / ev.sum((1, 2)).clamp(min=1)
        ).sum()
        c_logit = self.c_target(hc[:, :, -2])[..., 0]  # (S, B)
        c_bce = F.binary_cross_entropy_with_logits(
            c_logit, d, reduction="none"
        )
        mt = missed_target.float()
        losses["chunker_target"] = (
            (c_bce * mt).sum(1) / mt.sum(1).clamp(min=1)
        ).sum()

        # The imitation term: A's extra head predicts C's hidden state at
        # steps 0..T-2. C's state is detached: the term must not pull C.
        # The last step is left out, where C has just been told the target.
        if imitate and c.imitation > 0:
            guess = self.a_imitate(hid[:, :, :-1])  # (S, B, T-1, HC)
            mse = (guess - hc[:, :, :-1].detach()).pow(2)
            losses["imitation"] = c.imitation * mse.mean((1, 2, 3)).sum()
        rec.events = events
        rec.chunker_logit = c_logit
        rec.chunker_hidden = hc
        return rec

    def update(
        self,
        symbols: torch.Tensor,
        targets: torch.Tensor,
        rehearsal: tuple | None = None,
    ) -> StepRecord:
        """One optimiser step for A (and C) on one batch.

        ``rehearsal``: an optional batch of old episodes ``(symbols,
        targets)`` on which A keeps training its own two skills (next symbol
        and target); they are not shown to C. A third entry, C's hidden
        states recorded on those episodes earlier ``(S, B, T, HC)``, adds
        the imitation term towards those stored states as well.
        """
        rec = self.forward_batch(symbols, targets)
        loss = sum(rec.losses.values())
        if rehearsal is not None:
            old = self.forward_batch(*rehearsal[:2], imitate=False)
            loss = loss + old.losses["next"] + old.losses["target"]
            if len(rehearsal) == 3:
                guess = self.a_imitate(old.hidden[:, :, :-1])
                mse = (guess - rehearsal[2][:, :, :-1]).pow(2)
                loss = loss + self.config.imitation * mse.mean((1, 2, 3)).sum()
        self.opt_a.zero_grad()
        if self.opt_c is not None:
            self.opt_c.zero_grad()
        loss.backward()
        _clip_per_seed(self.a_params, self.config.clip)
        self.opt_a.step()
        if self.opt_c is not None:
            _clip_per_seed(self.c_params, self.config.clip)
            self.opt_c.step()
        return rec

    @torch.no_grad()
    def evaluate(
        self, symbols: torch.Tensor, targets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Per-seed accuracies ``(S,)`` on a batch, without any training.

        ``automatiser``: share of targets A gets right by the sign of its
        logit; ``chunker``: the same for C's prediction; ``events``: share
        of raw steps passed to C; ``next``: A's next-symbol accuracy.
        """
        rec = self.forward_batch(symbols, targets, truncation=None)
        d = targets.bool()
        out = {
            "automatiser": ((rec.target_logit > 0) == d).float().mean(1),
            "next": (rec.next_logits.argmax(-1) == symbols[:, :, 1:])
            .float()
            .mean((1, 2)),
        }
        if rec.events is not None:
            out["chunker"] = ((rec.chunker_logit > 0) == d).float().mean(1)
            out["events"] = rec.events.float().mean((1, 2))
        return out


def _episodes(lag, seeds, batch, noise, g, family=None):
    if family is None:
        sym, tgt = long_lag_episodes(lag, seeds * batch, noise=noise, seed=g)
    else:
        sym, tgt = two_family_episodes(
            lag, seeds * batch, family=family, noise=noise, seed=g
        )
    return sym.view(seeds, batch, -1), tgt.view(seeds, batch)


def _eval_set(lag, seeds, noise, family=None):
    """Both noise-free episodes, or 256 fixed noisy ones, for every seed."""
    if noise == 0:
        sym, tgt = long_lag_episodes(lag, 2, seed=0)
        sym[:, 0], tgt[:] = torch.tensor([0, 1]), torch.tensor([1, 0])
        if family == 1:
            sym, tgt = _as_second_family(sym, tgt, lag)
    else:
        sym, tgt = _episodes(lag, 1, 256, noise, generator(12345), family)
        sym, tgt = sym[0], tgt[0]
    return (
        sym.expand(seeds, *sym.shape).clone(),
        tgt.expand(seeds, *tgt.shape).clone(),
    )


def solved_at(
    accuracy: torch.Tensor, sequences: Sequence[int], level: float = 0.95
) -> list[int | None]:
    """Sequences seen when each seed was solved for good, or ``None``.

    ``accuracy``: ``(evals, S)``, one row per evaluation; ``sequences``: the
    episodes per seed seen before each evaluation. A seed is solved at the
    first evaluation from which on every accuracy is at least ``level``.
    """
    ok = accuracy >= level  # (E, S)
    # Reversed cumulative "all later ones ok".
    stays = ok.flip(0).int().cumprod(0).flip(0).bool()
    out: list[int | None] = []
    for s in range(ok.shape[1]):
        hits = torch.nonzero(stays[:, s])
        out.append(int(sequences[int(hits[0])]) if len(hits) else None)
    return out


@dataclass
class LongLagResult:
    """A finished long-lag run for ``S`` seeds.

    ``sequences``: episodes per seed seen at each evaluation;
    ``curves[name]``: ``(evals, S)`` for ``automatiser``, ``next`` and, with
    a chunker, ``chunker`` and ``events`` (share of steps passed to C).
    ``solved_automatiser`` / ``solved_chunker``: per seed, episodes seen
    when the target was solved for good (>= 95%), else ``None``.
    """

    config: LongLagConfig
    system: LongLagSystem
    sequences: list[int]
    curves: dict[str, torch.Tensor]
    solved_automatiser: list[int | None]
    solved_chunker: list[int | None]
    cpu_seconds: float

    def count(self, who: str = "automatiser") -> int:
        """How many seeds solved the task."""
        solved = getattr(self, f"solved_{who}")
        return sum(s is not None for s in solved)

    def median(self, who: str = "automatiser") -> float | None:
        """Median episodes to solve over the seeds that solved it."""
        done = [s for s in getattr(self, f"solved_{who}") if s is not None]
        return float(torch.tensor(done).float().median()) if done else None


def train_long_lag(
    config: LongLagConfig,
    *,
    seeds: int,
    sequences: int,
    seed: int | torch.Generator = 0,
    eval_every: int | None = None,
    stop_when_solved: bool | str = False,
    family: int | None = None,
    system: LongLagSystem | None = None,
    rehearse: Callable[[torch.Generator], tuple] | None = None,
    progress: bool = False,
) -> LongLagResult:
    """Train ``seeds`` runs on the long-lag task for ``sequences`` episodes.

    Evaluates every ``eval_every`` updates (default: about 80 points) on the
    two noise-free episodes (or 256 fixed noisy ones). With
    ``stop_when_solved`` training ends once every seed is solved and has
    stayed solved for five evaluations (``"chunker"``: once the chunker
    is; ``True``: once the automatiser and the chunker are). ``family``
    picks one of the two families of :func:`two_family_episodes`;
    ``system`` continues training an existing system; ``rehearse(g)``
    returns a batch of old episodes to rehearse at each update.

    ``seed``: an int (the system is drawn from ``seed`` and the episodes
    from ``seed + 1000``) or a ``torch.Generator``, which draws both.
    ``eval_every`` must be ``None`` or an int >= 1; ``stop_when_solved``
    ``False``, ``True`` or ``"chunker"``.
    """
    import time

    config.check()
    positive_int("seeds", seeds)
    positive_int("sequences", sequences)
    if eval_every is not None:
        positive_int("eval_every", eval_every)
    if not (
        isinstance(stop_when_solved, bool) or stop_when_solved == "chunker"
    ):
        raise ValueError(
            "stop_when_solved must be False, True or 'chunker', got "
            f"{stop_when_solved!r}"
        )
    if isinstance(seed, torch.Generator):
        g = seed
    else:
        generator(seed)  # refuses what is neither an int nor a Generator
        g = None
    if system is None:
        system = LongLagSystem(config, seeds=seeds, seed=seed)
    if g is None:
        g = generator(seed + 1000)
    updates = max(1, sequences // config.batch)
    every = eval_every or max(1, updates // 80)
    ev_sym, ev_tgt = _eval_set(config.lag, seeds, config.noise, family)
    seen, rows = [], []
    cpu0 = time.process_time()
    last_ok = 0
    for u in tqdm(range(updates + 1), disable=not progress, desc="nc92"):
        if u % every == 0 or u == updates:
            r = system.evaluate(ev_sym, ev_tgt)
            seen.append(u * config.batch)
            rows.append(r)
            key = "chunker" if "chunker" in r else "automatiser"
            done = bool((r[key] >= 0.95).all())
            if stop_when_solved != "chunker":
                done &= bool((r["automatiser"] >= 0.95).all())
            last_ok = last_ok + 1 if done else 0
            if stop_when_solved and last_ok >= 5:
                break
        if u == updates:
            break
        sym, tgt = _episodes(
            config.lag, seeds, config.batch, config.noise, g, family
        )
        system.update(sym, tgt, rehearse(g) if rehearse else None)
    curves = {k: torch.stack([r[k] for r in rows]) for k in rows[0]}
    return LongLagResult(
        config,
        system,
        seen,
        curves,
        solved_at(curves["automatiser"], seen),
        solved_at(curves["chunker"], seen)
        if "chunker" in curves
        else [None] * seeds,
        time.process_time() - cpu0,
    )


# -- forgetting and rehearsal (chapter 4) --------------------------------


def _as_second_family(sym, tgt, lag):
    shifted = torch.where(sym >= 2, sym + lag, sym)
    return shifted, tgt


def two_family_episodes(
    lag: int,
    batch: int,
    *,
    family: int,
    noise: float = 0.0,
    seed: int | torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Episodes of one of two families that share their opening symbols.

    Family 0 is the long-lag task itself: ``a`` or ``x``, then ``b1 ..
    b<lag>``, target 1 for ``a``. Family 1 opens and ends the same way, but
    its middle runs ``c1 .. c<lag>`` (ids ``lag + 2 ..``). A net that learns
    family 1 without seeing family 0 again reuses the same weights for new
    predictions, so what it knew of family 0 can really be lost. The
    vocabulary has ``2 * lag + 2`` symbols. Returns ``(symbols (batch,
    lag + 1), targets (batch,))``.
    """
    if family not in (0, 1):
        raise ValueError(f"family must be 0 or 1, got {family!r}")
    sym, tgt = long_lag_episodes(lag, batch, noise=noise, seed=seed)
    return _as_second_family(sym, tgt, lag) if family == 1 else (sym, tgt)


@dataclass
class ForgettingResult:
    """Accuracies ``(S,)`` on both families after each phase of training.

    ``after_first``: after phase 1 (family 0 only); ``plain`` and
    ``rehearsed``: after phase 2 (family 1 only), without and with
    rehearsal of family 0; ``rehearsed_states``: rehearsal that also
    imitates C's states recorded on family 0 at the end of phase 1. Keys
    ``old`` / ``new`` hold A's target accuracy on family 0 / family 1;
    ``old_next`` / ``new_next`` its next-symbol accuracy on them.
    """

    after_first: dict[str, torch.Tensor]
    plain: dict[str, torch.Tensor]
    rehearsed: dict[str, torch.Tensor]
    rehearsed_states: dict[str, torch.Tensor]


def forgetting_run(
    *,
    lag: int = 20,
    seeds: int = 5,
    first: int = 4000,
    second: int = 4000,
    seed: int | torch.Generator = 0,
    batch: int = 16,
) -> ForgettingResult:
    """A masters family 0 with the chunker, then absorbs family 1.

    Phase 1 trains the chunker system on family 0 for ``first`` episodes
    per seed. Phase 2 copies the system twice and trains on family 1 for
    ``second`` episodes: once plainly, once rehearsing family 0 (A's own
    next-symbol and target losses on a replayed batch of old episodes each
    update). Both copies start from the same weights and see the same
    family-1 episodes, so they differ only in the rehearsal. ``seed``: an
    int, or a ``torch.Generator`` from which one is drawn.
    """
    import copy

    seed = _int_seed(seed)

    cfg = LongLagConfig(lag=lag, batch=batch, vocab_size=2 * lag + 2)
    base = train_long_lag(
        cfg, seeds=seeds, sequences=first, seed=seed, family=0
    ).system

    def measure(system):
        out = {}
        for name, fam in (("old", 0), ("new", 1)):
            r = system.evaluate(*_eval_set(lag, seeds, 0.0, fam))
            out[name] = r["automatiser"]
            out[f"{name}_next"] = r["next"]
        return out

    def rehearse(g):
        return _episodes(lag, seeds, batch, 0.0, g, family=0)

    # C's states on the two old episodes, recorded at the end of phase 1.
    old_sym, old_tgt = _eval_set(lag, seeds, 0.0, 0)
    with torch.no_grad():
        old_c = base.forward_batch(old_sym, old_tgt).chunker_hidden
    reps = max(1, batch // 2)
    stored = (
        old_sym.repeat(1, reps, 1),
        old_tgt.repeat(1, reps),
        old_c.repeat(1, reps, 1, 1),
    )

    def rehearse_with_states(g):
        return stored

    after_first = measure(base)
    runs = {}
    variants = (
        ("plain", None),
        ("rehearsed", rehearse),
        ("rehearsed_states", rehearse_with_states),
    )
    for name, fn in variants:
        system = copy.deepcopy(base)
        # Fresh optimiser state is not needed: Adam carries on, as it would
        # in one long run.
        train_long_lag(
            cfg,
            seeds=seeds,
            sequences=second,
            seed=seed + 1,
            family=1,
            system=system,
            rehearse=fn,
        )
        runs[name] = measure(system)
    return ForgettingResult(
        after_first, runs["plain"], runs["rehearsed"], runs["rehearsed_states"]
    )


# -- the multi-level history compressor (chapter 3) ----------------------


def sentence_stream(
    length: int,
    *,
    sentences: Sequence[Sequence[str]],
    end: str = ". ",
    seed: int | torch.Generator,
) -> list[str]:
    """Letters of random sentences, one after another, cut to ``length``.

    Each sentence is a fixed list of words; each word is written letter by
    letter and followed by a space, each sentence by a full stop and a
    space. So letters are predictable inside a word, words inside a
    sentence, and only the choice of the next sentence is a coin toss.

    ``sentences`` must be a non-empty list of non-empty lists of words
    (non-empty strings): ``["fat cat"]`` or ``["ab", "cd"]`` (strings in
    place of lists of words) is refused, not spelled out letter by letter.
    """
    positive_int("length", length)
    if isinstance(sentences, (str, bytes)) or not isinstance(
        sentences, Sequence
    ):
        raise ValueError(
            "sentences must be a list of sentences, each a list of words, "
            f"got {type(sentences).__name__}"
        )
    if not sentences:
        raise ValueError("sentences must hold at least one sentence")
    for s in sentences:
        if isinstance(s, (str, bytes)) or not isinstance(s, Sequence):
            raise ValueError(
                "sentences must hold lists of words, got "
                f"{type(s).__name__} {s!r:.40}; write "
                f"{str(s).split()!r:.40} for a sentence of words"
            )
        if not s or any(not isinstance(w, str) or not w for w in s):
            raise ValueError(
                "sentences must be non-empty lists of words (non-empty "
                f"strings), got {s!r:.60}"
            )
    if not isinstance(end, str):
        raise ValueError(f"end must be a string, got {end!r}")
    g = generator(seed)
    texts = [" ".join(s) + end for s in sentences]
    out: list[str] = []
    while len(out) < length:
        pick = int(torch.randint(len(texts), (1,), generator=g))
        out.extend(texts[pick])
    return out[:length]


class _LevelNet(nn.Module):
    """One level of the hierarchy: a recurrent net predicting its next input.

    Its input is the one-hot symbol and, above the first level, a one-hot
    code of the time since the previous event (capped at ``gaps``).
    """

    def __init__(
        self, vocab: int, hidden: int, gaps: int, seed: int, cell: str
    ):
        super().__init__()
        self.vocab, self.gaps = vocab, gaps
        layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
        # Seeded without touching the global random state.
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.rnn = layer(vocab + gaps, hidden, batch_first=True)
            self.head = nn.Linear(hidden, vocab)

    def inputs(self, ids: torch.Tensor, gaps: torch.Tensor | None):
        x = F.one_hot(ids, self.vocab).float()
        if self.gaps:
            code = F.one_hot(gaps.clamp(1, self.gaps) - 1, self.gaps)
            x = torch.cat([x, code.float()], -1)
        return x

    def forward(self, ids, gaps=None, state=None):
        out, state = self.rnn(self.inputs(ids, gaps), state)
        return self.head(out), state


class _LevelPredictor:
    """The ``start()``/``step()`` protocol of :mod:`compression` for a level.

    The time codes are part of what the level reads; the decoder knows them
    (they are stored beside the events), so they can live in the predictor.
    """

    def __init__(self, net: _LevelNet, gaps: torch.Tensor | None):
        self.net, self.gaps = net, gaps

    @torch.no_grad()
    def start(self):
        return (0, None)

    @torch.no_grad()
    def step(self, symbol: int, state):
        t, h = state
        ids = torch.tensor([[int(symbol)]])
        gap = None if self.gaps is None else self.gaps[t : t + 1][None]
        logits, h = self.net(ids, gap, h)
        return logits[0, 0], (t + 1, h)


class HistoryCompressor:
    """A stack of predictors, each fed only the surprises of the one below.

    Chapter 3. Level 1 reads the raw symbols. When a level stops improving
    (its held-out loss has not fallen by ``min_gain`` in ``patience``
    evaluations) it is frozen, the stream of its unexpected inputs (argmax
    rule, first symbol always) is computed, and a new level is trained on
    that shorter stream, reading each event together with the time since
    the previous event. Levels are added until ``max_levels`` or until a
    level passes on nearly everything (it found nothing to predict).

    :meth:`compress` / :meth:`decompress` code a sequence losslessly: the
    top level's events plus each level's time stamps; decoding replays the
    frozen levels from the top down.

    ``seed``: an int, or a ``torch.Generator`` from which one is drawn.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        hidden: int = 32,
        max_levels: int = 3,
        gaps: int = 8,
        cell: str = "rnn",
        seed: int | torch.Generator = 0,
    ):
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.hidden = positive_int("hidden", hidden)
        self.max_levels = positive_int("max_levels", max_levels)
        self.gaps = positive_int("gaps", gaps)
        self.cell = _check_cell(cell)
        self.seed = _int_seed(seed)
        self.levels: list[_LevelNet] = []
        self.fractions: list[float] = []

    def _train_level(
        self, net, ids, gaps, *, window, steps, lr, patience, min_gain, g
    ):
        """Truncated BPTT with the state carried from snippet to snippet.

        16 read heads walk through the first 80% of the stream, ``window``
        symbols per step, keeping their state but cutting the gradient at
        each snippet's start; the last 20% is held out to decide when the
        level has stopped improving.
        """
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        n = len(ids)
        cut = max(window + 2, n - n // 5)
        held = slice(cut - 1, n)
        best, stale = math.inf, 0
        heads = torch.randint(0, cut - window - 1, (16,), generator=g)
        state = None
        for step in range(steps):
            if int(heads.max()) + window + 1 > cut:
                heads = torch.randint(0, cut - window - 1, (16,), generator=g)
                state = None
            idx = heads[:, None] + torch.arange(window + 1)  # (16, W+1)
            heads = heads + window
            x, gx = ids[idx], None if gaps is None else gaps[idx]
            logits, state = net(
                x[:, :-1], None if gx is None else gx[:, :-1], state
            )
            state = (
                tuple(x.detach() for x in state)
                if isinstance(state, tuple)
                else state.detach()
            )
            loss = F.cross_entropy(
                logits.reshape(-1, net.vocab), x[:, 1:].reshape(-1)
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 25 == 24:
                with torch.no_grad():
                    hx = ids[held][None]
                    hg = None if gaps is None else gaps[held][None]
                    lg, _ = net(hx[:, :-1], None if hg is None else hg[:, :-1])
                    val = float(F.cross_entropy(lg[0], hx[0, 1:]))
                if val < best * (1 - min_gain):
                    best, stale = val, 0
                else:
                    stale += 1
                if stale >= patience:
                    break
        for p in net.parameters():
            p.requires_grad_(False)
        net.eval()

    def fit(
        self,
        stream: torch.Tensor,
        *,
        window: int | Sequence[int] = 40,
        steps: int = 600,
        lr: float = 1e-2,
        patience: int = 3,
        min_gain: float = 0.01,
    ) -> HistoryCompressor:
        """Grow the hierarchy on one long stream of ids ``(time,)``.

        ``window``: the length of the training snippets, one number for all
        levels or one per level. Each snippet starts from a blank state, so
        a level learns dependencies no longer than its window: a short
        window at the bottom keeps the first level to short units.
        """
        ids = long_tensor("stream", stream, dims=1)
        windows = (
            [window] * self.max_levels
            if isinstance(window, int)
            else list(window)
        )
        if len(windows) < self.max_levels:
            raise ValueError(
                f"window must give {self.max_levels} lengths, got {window!r}"
            )
        for w in windows:
            positive_int("window", w)
        g = generator(self.seed)
        gaps = None
        total = len(ids)
        vocab = self.vocab_size
        for level in range(self.max_levels):
            if len(ids) < 3:
                break
            net = _LevelNet(
                vocab,
                self.hidden,
                0 if level == 0 else self.gaps,
                self.seed + level,
                self.cell,
            )
            self._train_level(
                net,
                ids,
                gaps,
                window=windows[level],
                steps=steps,
                lr=lr,
                patience=patience,
                min_gain=min_gain,
                g=g,
            )
            events = compress(ids, _LevelPredictor(net, gaps))
            self.levels.append(net)
            self.fractions.append(len(events.events) / total)
            log.info(
                "level %d passes %d of %d",
                level + 1,
                len(events.events),
                len(ids),
            )
            if len(events.events) > 0.9 * len(ids):
                break
            times = torch.tensor(events.times)
            gaps = torch.diff(times, prepend=times[:1])  # gap to previous
            ids = torch.tensor(events.symbols)
        return self

    def compress(self, stream: torch.Tensor) -> list[Compressed]:
        """Events of every level; the last entry is the top level's code."""
        if not self.levels:
            raise ValueError("fit() must run before compress()")
        ids = long_tensor("stream", stream, dims=1)
        gaps, out = None, []
        for net in self.levels:
            c = compress(ids, _LevelPredictor(net, gaps))
            out.append(c)
            times = torch.tensor(c.times)
            gaps = torch.diff(times, prepend=times[:1])
            ids = torch.tensor(c.symbols)
        return out

    def decompress(self, codes: list[Compressed]) -> torch.Tensor:
        """Rebuild the raw stream from :meth:`compress`'s output.

        Uses only the top level's symbols and every level's time stamps:
        each level's symbols are decoded by the level above it.
        """
        if not self.levels:
            raise ValueError("fit() must run before decompress()")
        if isinstance(codes, Compressed) or not isinstance(codes, Sequence):
            raise ValueError(
                "codes must be the list of Compressed that compress() "
                f"returns, got {type(codes).__name__}"
            )
        if not all(isinstance(c, Compressed) for c in codes):
            raise ValueError(
                "codes must hold Compressed codes, as compress() returns"
            )
        if len(codes) != len(self.levels):
            raise ValueError(
                f"codes must hold {len(self.levels)} levels, got {len(codes)}"
            )
        symbols = list(codes[-1].symbols)
        for level in range(len(self.levels) - 1, -1, -1):
            code = codes[level]
            gaps = None
            if level > 0:
                times = torch.tensor(codes[level - 1].times)
                gaps = torch.diff(times, prepend=times[:1])
            kept = Compressed(
                code.length,
                code.vocab_size,
                tuple(zip(code.times, symbols, strict=True)),
            )
            symbols = decompress(
                kept, _LevelPredictor(self.levels[level], gaps)
            ).tolist()
        return torch.tensor(symbols)
