"""A grid world, a learned world model, a planner and one big net.

Chapter 9 uses it. :class:`GridWorld` is a maze with walls, start cells and
goal cells. :func:`random_interaction` logs random play; a world model
(:class:`OneBigNet` with its next-position and reward heads) learns the
dynamics from it; :func:`plan_action` decides by breadth-first search that
queries the world model (the slow, deliberate system); and
:func:`distill` trains a single net to imitate the planner's actions while,
optionally, rehearsing the world model's predictions (the fast system that
keeps its old skill). Every random function takes ``seed=``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from distill_lessons._checks import (
    generator,
    non_negative_int,
    positive_float,
    positive_int,
)

__all__ = [
    "ACTIONS",
    "MAZE_8X8",
    "GridWorld",
    "Transitions",
    "random_interaction",
    "OneBigNet",
    "train_world_model",
    "world_model_accuracy",
    "learned_model",
    "plan_action",
    "plan_path",
    "teacher_labels",
    "distill",
    "hindsight_cloning",
    "Evaluation",
    "evaluate_policy",
    "evaluate_planner",
    "evaluate_random",
    "fresh_pairs",
]

ACTIONS: tuple[str, ...] = ("up", "right", "down", "left")
"""Action ids 0 to 3, in this order."""
_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))

MAZE_8X8 = """\
........
.##.###.
.#....#.
.#.##.#.
...#....
.###.##.
.....#..
.#.#...#"""
"""The chapter's maze: 43 free cells, longest shortest path 14 moves."""

Cell = tuple[int, int]


class GridWorld:
    """A maze on a grid: walls, start cells and goal cells.

    ``layout`` is a string of equal-length rows (or a list of them) over
    ``#`` (wall), ``.`` (free), ``S`` (a free start cell) and ``G`` (a free
    goal cell). ``starts`` and ``goals`` override the marked cells with
    lists of ``(row, col)``; the word ``"free"`` means every free cell.
    An episode starts in a start cell with a goal from the goal cells; each
    action moves one cell up, right, down or left, and a move into a wall
    or off the grid leaves the agent where it is. The reward is 1 on the
    step that enters the goal, which ends the episode, and 0 otherwise.

    Cells are numbered ``row * cols + col``. Raises ``ValueError`` for
    ragged rows, unknown characters, no goal, no start, or a start or goal
    inside a wall or off the grid.
    """

    def __init__(
        self,
        layout: str | Sequence[str],
        *,
        starts: Sequence[Cell] | str | None = None,
        goals: Sequence[Cell] | str | None = None,
        max_steps: int = 40,
    ):
        rows = layout.splitlines() if isinstance(layout, str) else layout
        rows = [r for r in rows if r != ""]
        if not rows:
            raise ValueError("layout must hold at least one row, got none")
        if len({len(r) for r in rows}) != 1:
            raise ValueError(
                "layout rows must all have the same length, got lengths "
                f"{sorted({len(r) for r in rows})}"
            )
        unknown = set("".join(rows)) - set("#.SG")
        if unknown:
            raise ValueError(
                f"layout may only use '#', '.', 'S' and 'G', got "
                f"{sorted(unknown)}"
            )
        self.layout = tuple(rows)
        self.rows, self.cols = len(rows), len(rows[0])
        self.max_steps = positive_int("max_steps", max_steps)
        self.wall = torch.tensor(
            [[ch == "#" for ch in r] for r in rows]
        ).flatten()  # (cells,)
        self.free_cells = [
            i for i in range(self.n_cells) if not bool(self.wall[i])
        ]
        self.starts = self._cells("starts", starts, "S")
        self.goals = self._cells("goals", goals, "G")

        # next_cell[c, a]: where action a leads from cell c
        table = torch.arange(self.n_cells)[:, None].repeat(1, 4)
        for c in range(self.n_cells):
            r, k = divmod(c, self.cols)
            for a, (dr, dk) in enumerate(_MOVES):
                nr, nk = r + dr, k + dk
                inside = 0 <= nr < self.rows and 0 <= nk < self.cols
                if inside and not self.wall[nr * self.cols + nk]:
                    table[c, a] = nr * self.cols + nk
        self.next_cell = table  # (cells, 4)

    @property
    def n_cells(self) -> int:
        """Cells of the grid, walls included (``rows * cols``)."""
        return self.rows * self.cols

    def cell(self, row: int, col: int) -> int:
        """The number of the cell at ``(row, col)``."""
        if not (0 <= row < self.rows and 0 <= col < self.cols):
            raise ValueError(
                f"cell (row, col) must lie in the {self.rows}x{self.cols} "
                f"grid, got ({row}, {col})"
            )
        return row * self.cols + col

    def _cells(self, name, given, mark) -> list[int]:
        if given is None:
            found = [
                r * self.cols + k
                for r, row in enumerate(self.layout)
                for k, ch in enumerate(row)
                if ch == mark
            ]
            if not found:
                kind = "goal" if mark == "G" else "start"
                raise ValueError(
                    f"layout has no {kind} cell (mark one with {mark!r}, or "
                    f"pass {name}=...)"
                )
            return found
        if isinstance(given, str):
            if given != "free":
                raise ValueError(
                    f"{name} must be a list of (row, col) or 'free', "
                    f"got {given!r}"
                )
            return list(self.free_cells)
        cells = []
        for rc in given:
            c = self.cell(*rc)
            if self.wall[c]:
                raise ValueError(
                    f"{name} must be free cells, but {tuple(rc)} is inside "
                    "a wall"
                )
            cells.append(c)
        if not cells:
            raise ValueError(f"{name} must hold at least one cell, got none")
        return cells

    def step(
        self, positions: torch.Tensor, actions: torch.Tensor, goals
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step for a batch: ``(next_positions, rewards)``, each ``(n,)``.

        ``positions``, ``actions`` and ``goals`` are long ``(n,)`` (or
        broadcastable); rewards are float, 1.0 where the goal is entered.
        """
        actions = torch.as_tensor(actions)
        if actions.numel() and (actions.min() < 0 or actions.max() > 3):
            raise ValueError("actions must lie in 0..3")
        positions = torch.as_tensor(positions)
        goals = torch.as_tensor(goals)
        for name, cells in (("positions", positions), ("goals", goals)):
            if cells.is_floating_point() or cells.dtype == torch.bool:
                raise ValueError(f"{name} must be integer cell ids")
            # A negative id would index from the end and wrap around.
            if cells.numel() and (
                cells.min() < 0 or cells.max() >= self.n_cells
            ):
                raise ValueError(
                    f"{name} must lie in 0..{self.n_cells - 1}, got values "
                    f"from {int(cells.min())} to {int(cells.max())}"
                )
        if positions.numel() and self.wall[positions].any():
            raise ValueError("positions must be free cells, not walls")
        nxt = self.next_cell[positions, actions]
        return nxt, (nxt == goals).float()

    def distances(self, goal: int) -> torch.Tensor:
        """Shortest number of moves from every cell to ``goal``, ``(cells,)``;
        -1 for walls and cells that cannot reach it."""
        dist = torch.full((self.n_cells,), -1)
        dist[goal] = 0
        frontier, d = [goal], 0
        while frontier:
            d += 1
            nxt = []
            for c in range(self.n_cells):
                if dist[c] < 0 and not self.wall[c]:
                    if any(
                        int(self.next_cell[c, a]) in frontier for a in range(4)
                    ):
                        dist[c] = d
                        nxt.append(c)
            frontier = nxt
        return dist

    def true_model(self) -> Callable:
        """The exact dynamics, in the interface of :func:`learned_model`."""

        def model(positions, goals, actions):
            return self.step(positions, actions, goals)

        return model


@dataclass
class Transitions:
    """Logged steps ``(n,)``: position, goal, action, next position,
    reward (float), and the number of the episode each belongs to."""

    positions: torch.Tensor
    goals: torch.Tensor
    actions: torch.Tensor
    next_positions: torch.Tensor
    rewards: torch.Tensor
    episodes: torch.Tensor

    def __len__(self) -> int:
        return len(self.positions)


def random_interaction(
    env: GridWorld, steps: int, *, seed: int | torch.Generator
) -> Transitions:
    """``steps`` environment steps of uniformly random play.

    Episodes start in a random start cell with a random goal (never the
    start itself) and last until the goal is entered or ``env.max_steps``
    moves have been made; then the next episode begins. Returns exactly
    ``steps`` transitions.
    """
    positive_int("steps", steps)
    g = generator(seed)
    log = {k: [] for k in ("p", "g", "a", "n", "r", "e")}
    episode, t, pos, goal = -1, env.max_steps, 0, 0
    actions = torch.randint(4, (steps,), generator=g).tolist()
    for i in range(steps):
        if t >= env.max_steps:
            episode, t = episode + 1, 0
            pos, goal = _pair(env, g)
        nxt = int(env.next_cell[pos, actions[i]])
        reward = float(nxt == goal)
        for k, v in zip(
            "pgane", (pos, goal, actions[i], nxt, episode), strict=True
        ):
            log[k].append(v)
        log["r"].append(reward)
        pos, t = nxt, t + 1
        if reward:
            t = env.max_steps
    return Transitions(
        torch.tensor(log["p"]),
        torch.tensor(log["g"]),
        torch.tensor(log["a"]),
        torch.tensor(log["n"]),
        torch.tensor(log["r"]),
        torch.tensor(log["e"]),
    )


class OneBigNet(nn.Module):
    """One MLP with three heads: next position, reward, and action.

    The input is a one-hot position, a one-hot goal and a one-hot action
    (``2 * cells + 4`` units); two ReLU layers of ``hidden`` units follow.
    A world-model query fills all three slots and reads the next-position
    head (``cells`` logits) and the reward head (one logit); a policy query
    leaves the action slot at zero and reads the policy head (4 logits).
    So the world model, the distilled controller and the teacher-free
    baseline are all the same size.
    """

    def __init__(self, n_cells: int, hidden: int = 128, *, seed=0):
        super().__init__()
        self.n_cells = positive_int("n_cells", n_cells)
        self.hidden = positive_int("hidden", hidden)
        g = generator(seed)
        self.trunk = nn.Sequential(
            nn.Linear(2 * n_cells + 4, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.next_head = nn.Linear(hidden, n_cells)
        self.reward_head = nn.Linear(hidden, 1)
        self.policy_head = nn.Linear(hidden, 4)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    bound = m.in_features**-0.5
                    for p in (m.weight, m.bias):
                        u = torch.rand(p.shape, generator=g)
                        p.copy_((2 * u - 1) * bound)

    def _inputs(self, positions, goals, actions=None) -> torch.Tensor:
        parts = [
            F.one_hot(positions, self.n_cells),
            F.one_hot(goals, self.n_cells),
            F.one_hot(actions, 4)
            if actions is not None
            else positions.new_zeros(len(positions), 4),
        ]
        return torch.cat(parts, dim=-1).float()  # (n, 2 * cells + 4)

    def world(
        self, positions, goals, actions
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """World-model query: next-position logits ``(n, cells)`` and
        reward logits ``(n,)`` for long ``(n,)`` inputs."""
        h = self.trunk(self._inputs(positions, goals, actions))
        return self.next_head(h), self.reward_head(h)[:, 0]

    def policy(self, positions, goals) -> torch.Tensor:
        """Policy query: action logits ``(n, 4)``."""
        return self.policy_head(self.trunk(self._inputs(positions, goals)))

    def macs(self, query: str) -> int:
        """Multiply-adds of one forward row of a ``"world"`` or
        ``"policy"`` query (dense layers, as a plain implementation runs
        them)."""
        trunk = sum(
            m.in_features * m.out_features
            for m in self.trunk
            if isinstance(m, nn.Linear)
        )
        if query == "world":
            return trunk + self.hidden * (self.n_cells + 1)
        if query == "policy":
            return trunk + self.hidden * 4
        raise ValueError(f"query must be 'world' or 'policy', got {query!r}")


def _batches(n: int, size: int, steps: int, g: torch.Generator):
    for _ in range(steps):
        yield torch.randint(n, (size,), generator=g)


def _world_loss(net, data, idx, goal_pool, next_cell, g) -> torch.Tensor:
    pos, act, nxt = (
        data.positions[idx],
        data.actions[idx],
        data.next_positions[idx],
    )
    # Hindsight goals: the reward depends only on the next position and the
    # goal, both observed, so a logged step can be replayed with any goal.
    # A quarter of the rows take the cell actually reached (reward 1), a
    # quarter a cell up to two moves from it (near misses, which a net
    # easily takes for hits), and the rest a goal drawn at random.
    drawn = goal_pool[torch.randint(len(goal_pool), (len(idx),), generator=g)]
    moves = torch.randint(4, (2, len(idx)), generator=g)
    near = next_cell[next_cell[nxt, moves[0]], moves[1]]
    u = torch.rand(len(idx), generator=g)
    goals = torch.where(u < 0.25, nxt, torch.where(u < 0.5, near, drawn))
    logits, reward = net.world(pos, goals, act)
    return F.cross_entropy(logits, nxt) + F.binary_cross_entropy_with_logits(
        reward, (nxt == goals).float()
    )


def train_world_model(
    env: GridWorld,
    data: Transitions,
    *,
    hidden: int = 128,
    updates: int = 1500,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int | torch.Generator,
) -> OneBigNet:
    """Fit a :class:`OneBigNet`'s next-position and reward heads to logged
    random play (cross-entropy plus binary cross-entropy, in nats)."""
    positive_int("updates", updates)
    positive_float("lr", lr)
    g = generator(seed)
    net = OneBigNet(env.n_cells, hidden, seed=g)
    goal_pool = torch.tensor(env.goals)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for idx in _batches(len(data), batch_size, updates, g):
        loss = _world_loss(net, data, idx, goal_pool, env.next_cell, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def world_model_accuracy(net: OneBigNet, env: GridWorld) -> float:
    """Share of (free cell, action) pairs whose next cell the net's
    next-position head gets right (argmax), against the true dynamics."""
    cells = torch.tensor(env.free_cells).repeat_interleave(4)
    acts = torch.arange(4).repeat(len(env.free_cells))
    logits, _ = net.world(cells, cells, acts)
    return float(
        (logits.argmax(-1) == env.next_cell[cells, acts]).float().mean()
    )


def learned_model(net: OneBigNet) -> Callable:
    """A net's world-model heads as a planner's model.

    The returned ``model(positions, goals, actions)`` gives the most likely
    next positions ``(n,)`` and predicted rewards ``(n,)`` (1.0 where the
    reward head's probability is above one half).
    """

    @torch.no_grad()
    def model(positions, goals, actions):
        logits, reward = net.world(positions, goals, actions)
        return logits.argmax(-1), (reward > 0).float()

    return model


def plan_path(
    model: Callable, start: int, goal: int, max_depth: int
) -> tuple[list[int] | None, int]:
    """Breadth-first search in ``model`` for the shortest action sequence.

    The search expands one depth level per call of ``model``, with all
    frontier cells times the four actions as one batch. A path ends on the
    first step whose predicted reward is 1. Returns ``(actions, rows)``:
    the actions of the shortest path found (``None`` if none within
    ``max_depth`` moves) and how many model rows were queried, the
    planner's compute.
    """
    non_negative_int("max_depth", max_depth)
    first: dict[int, list[int]] = {start: []}
    frontier = [start]
    rows = 0
    for _ in range(max_depth):
        if not frontier:
            break
        pos = torch.tensor(frontier).repeat_interleave(4)  # (frontier * 4,)
        act = torch.arange(4).repeat(len(frontier))
        nxt, reward = model(pos, torch.full_like(pos, goal), act)
        rows += len(pos)
        new = []
        for p, a, n, r in zip(
            pos.tolist(),
            act.tolist(),
            nxt.tolist(),
            reward.tolist(),
            strict=True,
        ):
            if r > 0:
                return first[p] + [a], rows
            if n not in first:
                first[n] = first[p] + [a]
                new.append(n)
        frontier = new
    return None, rows


def plan_action(
    model: Callable,
    position: int,
    goal: int,
    max_depth: int,
    *,
    seed: int | torch.Generator,
) -> tuple[int, int]:
    """One decision of the planner: the first action of the shortest path
    in ``model``, or a random action when it finds none. Returns
    ``(action, rows)``. Replanning at every real step makes this model
    predictive control."""
    path, rows = plan_path(model, position, goal, max_depth)
    if path:
        return path[0], rows
    return int(torch.randint(4, (), generator=generator(seed))), rows


def teacher_labels(
    env: GridWorld,
    model: Callable,
    trajectories: int,
    *,
    seed: int | torch.Generator,
) -> tuple[Transitions, set[tuple[int, int]]]:
    """The planner's decisions along imagined trajectories: no real steps.

    For ``trajectories`` random (start, goal) pairs the planner finds a
    path in ``model`` alone, and each (position, goal, action) on it, with
    positions as the model imagines them, becomes a label. Returns the
    labels (``next_positions`` and ``rewards`` from the model) and the set
    of (start, goal) pairs used, so evaluation can avoid them.
    """
    positive_int("trajectories", trajectories)
    g = generator(seed)
    p_, g_, a_, n_, r_, e_ = [], [], [], [], [], []
    used: set[tuple[int, int]] = set()
    for k in range(trajectories):
        start, goal = _pair(env, g)
        used.add((start, goal))
        path, _ = plan_path(model, start, goal, env.max_steps)
        pos = start
        for a in path or []:
            nxt, r = model(
                torch.tensor([pos]), torch.tensor([goal]), torch.tensor([a])
            )
            p_.append(pos), g_.append(goal), a_.append(a), e_.append(k)
            n_.append(int(nxt)), r_.append(float(r))
            pos = int(nxt)
    t = torch.tensor
    labels = Transitions(t(p_), t(g_), t(a_), t(n_), t(r_), t(e_))
    return labels, used


def _pair(env: GridWorld, g: torch.Generator) -> tuple[int, int]:
    """A random goal, then a random start cell other than it."""
    goal = env.goals[int(torch.randint(len(env.goals), (), generator=g))]
    others = [c for c in env.starts if c != goal]
    if not others:
        raise ValueError(
            "starts must hold a cell other than the goal, got only the goal"
        )
    return others[int(torch.randint(len(others), (), generator=g))], goal


def fresh_pairs(
    env: GridWorld,
    n: int,
    *,
    avoid: set[tuple[int, int]] = frozenset(),
    seed: int | torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` (start, goal) pairs with start != goal, none in ``avoid``.

    Returns long tensors ``(starts, goals)``, each ``(n,)``. Pairs may
    repeat among themselves.
    """
    positive_int("n", n)
    g = generator(seed)
    starts, goals = [], []
    for _ in range(100 * n):
        if len(starts) == n:
            break
        s, goal = _pair(env, g)
        if (s, goal) not in avoid:
            starts.append(s), goals.append(goal)
    if len(starts) < n:
        raise ValueError("avoid leaves too few (start, goal) pairs to draw")
    return torch.tensor(starts), torch.tensor(goals)


def distill(
    world_model: OneBigNet,
    labels: Transitions,
    *,
    rehearsal: bool = True,
    replay: Transitions | None = None,
    weight: float = 1.0,
    updates: int = 1500,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int | torch.Generator,
) -> OneBigNet:
    """Collapse planner and world model into one net (the 1991 recipe).

    The net starts as a copy of ``world_model`` and learns to imitate the
    planner's ``labels`` with its policy head (cross-entropy). With
    ``rehearsal`` it also keeps matching the frozen world model on replayed
    queries (positions and actions from ``replay``, goals drawn from the
    labels): cross-entropy of its next-position head against the frozen
    model's softmax, and of its reward head against the frozen model's
    probability, weighted by ``weight``. Without rehearsal nothing holds
    the world-model heads in place while the shared layers change.
    """
    positive_int("updates", updates)
    if rehearsal and replay is None:
        raise ValueError("replay must hold logged steps when rehearsal=True")
    g = generator(seed)
    teacher = world_model
    net = copy.deepcopy(world_model).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for idx in _batches(len(labels), batch_size, updates, g):
        loss = F.cross_entropy(
            net.policy(labels.positions[idx], labels.goals[idx]),
            labels.actions[idx],
        )
        if rehearsal:
            r = torch.randint(len(replay), (batch_size,), generator=g)
            q = (replay.positions[r], labels.goals[idx], replay.actions[r])
            with torch.no_grad():
                t_next, t_reward = teacher.world(*q)
            s_next, s_reward = net.world(*q)
            keep = -(F.softmax(t_next, -1) * F.log_softmax(s_next, -1))
            loss = loss + weight * (
                keep.sum(-1).mean()
                + F.binary_cross_entropy_with_logits(
                    s_reward, torch.sigmoid(t_reward)
                )
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def hindsight_cloning(
    env: GridWorld,
    data: Transitions,
    *,
    hidden: int = 128,
    updates: int = 1500,
    batch_size: int = 128,
    lr: float = 3e-3,
    successes_only: bool = False,
    seed: int | torch.Generator,
) -> OneBigNet:
    """A teacher-free policy from the same random steps: behaviour cloning.

    By default every logged step is relabelled with the cell where its
    episode ended as the goal (hindsight), and a fresh :class:`OneBigNet`
    learns to output the action taken. With ``successes_only`` it learns
    only from episodes that happened to reach their own goal.
    """
    positive_int("updates", updates)
    g = generator(seed)
    ep = data.episodes
    last = torch.zeros(int(ep.max()) + 1, dtype=torch.long)
    last[ep] = data.next_positions  # later steps overwrite earlier ones
    if successes_only:
        won = torch.zeros_like(last, dtype=torch.bool)
        won[ep[data.rewards > 0]] = True
        keep = won[ep]
        goals = data.goals
    else:
        goals = last[ep]
        # a step taken from the final cell itself teaches nothing
        keep = data.positions != goals
    pos, gl, act = data.positions[keep], goals[keep], data.actions[keep]
    if len(pos) == 0:
        raise ValueError("data holds no step to learn from")
    net = OneBigNet(env.n_cells, hidden, seed=g)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for idx in _batches(len(pos), batch_size, updates, g):
        loss = F.cross_entropy(net.policy(pos[idx], gl[idx]), act[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


@dataclass
class Evaluation:
    """Results over episodes: success rate, mean moves of the successful
    episodes, forward rows and multiply-adds per action, and wall and CPU
    seconds per action."""

    success: float
    moves: float
    rows_per_action: float
    macs_per_action: float
    wall_per_action: float
    cpu_per_action: float


def _finish(solved, moves, actions, rows, macs_per_row, wall, cpu):
    solved = torch.as_tensor(solved, dtype=torch.bool)
    moves = torch.as_tensor(moves, dtype=torch.float)
    return Evaluation(
        float(solved.float().mean()),
        float(moves[solved].mean()) if solved.any() else float("nan"),
        rows / max(actions, 1),
        rows * macs_per_row / max(actions, 1),
        wall / max(actions, 1),
        cpu / max(actions, 1),
    )


@torch.no_grad()
def evaluate_policy(
    env: GridWorld,
    net: OneBigNet,
    starts: torch.Tensor,
    goals: torch.Tensor,
    *,
    sample: bool = False,
    seed: int | torch.Generator = 0,
) -> Evaluation:
    """Run ``net``'s policy head (greedy, or sampling with ``sample``) from
    each start to its goal, all episodes side by side, at most
    ``env.max_steps`` moves each. Timing counts one forward per action, as
    a lone agent would run it."""
    g = generator(seed)
    pos, done = starts.clone(), torch.zeros(len(starts), dtype=torch.bool)
    moves = torch.zeros(len(starts))
    actions = 0
    wall = cpu = 0.0
    for _ in range(env.max_steps):
        live = (~done).nonzero()[:, 0]
        if len(live) == 0:
            break
        w0, c0 = time.perf_counter(), time.process_time()
        logits = net.policy(pos[live], goals[live])
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        if sample:
            act = torch.multinomial(F.softmax(logits, -1), 1, generator=g)[
                :, 0
            ]
        else:
            act = logits.argmax(-1)
        pos[live], reward = env.step(pos[live], act, goals[live])
        moves[live] += 1
        done[live] = reward > 0
        actions += len(live)
    # batched forwards share one call among many agents; time one agent
    single = _time_single_forward(net, starts[:1], goals[:1])
    return _finish(
        done,
        moves,
        actions,
        actions,
        net.macs("policy"),
        single[0] * actions,
        single[1] * actions,
    )


def _time_single_forward(net, pos, goal, repeats: int = 200):
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        net.policy(pos, goal)
    return (
        (time.perf_counter() - w0) / repeats,
        (time.process_time() - c0) / repeats,
    )


def evaluate_planner(
    env: GridWorld,
    model: Callable,
    starts: torch.Tensor,
    goals: torch.Tensor,
    *,
    macs_per_row: int,
    seed: int | torch.Generator = 0,
) -> Evaluation:
    """Run the planner (:func:`plan_action` on ``model`` at every real
    step) from each start to its goal, in the real environment."""
    g = generator(seed)
    solved, moves = [], []
    actions = rows = 0
    wall = cpu = 0.0
    for s, goal in zip(starts.tolist(), goals.tolist(), strict=True):
        pos, won, t = s, False, 0
        while t < env.max_steps and not won:
            w0, c0 = time.perf_counter(), time.process_time()
            a, n = plan_action(model, pos, goal, env.max_steps, seed=g)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            rows, actions, t = rows + n, actions + 1, t + 1
            nxt, r = env.step(torch.tensor(pos), torch.tensor(a), goal)
            pos, won = int(nxt), bool(r > 0)
        solved.append(won), moves.append(t)
    return _finish(solved, moves, actions, rows, macs_per_row, wall, cpu)


def evaluate_random(
    env: GridWorld,
    starts: torch.Tensor,
    goals: torch.Tensor,
    *,
    seed: int | torch.Generator,
) -> Evaluation:
    """The uniformly random policy on the same episodes (no compute)."""
    g = generator(seed)
    pos, done = starts.clone(), torch.zeros(len(starts), dtype=torch.bool)
    moves = torch.zeros(len(starts))
    for _ in range(env.max_steps):
        act = torch.randint(4, (len(pos),), generator=g)
        nxt, reward = env.step(pos, act, goals)
        pos = torch.where(done, pos, nxt)
        moves += (~done).float()
        done = done | (reward > 0)
    return _finish(done, moves, 1, 0, 0, 0.0, 0.0)
