"""A planner and its world model collapsed into one big net, chapter 9.

    python -m distill_lessons.reproduce onebignet --seeds 3

Prints a markdown table with one row per seed: on fresh (start, goal)
pairs of the chapter's maze, the success rate of the planner (breadth-first
search in a learned world model), of the distilled single net with and
without rehearsal, of a teacher-free net of the same size trained on the
same random environment steps, and of the random policy; the compute per
action (multiply-adds) of planner and single net; and what the single net
keeps of the world model (next-cell accuracy, and the success of the
planner when it plans with the single net's own world-model heads).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from distill_lessons import gridworld as gw

__all__ = ["Config", "Parts", "build", "measure", "run_seed", "main"]


@dataclass(frozen=True)
class Config:
    """The knobs of one run; the defaults are the chapter's."""

    env_steps: int = 5000
    hidden: int = 128
    world_updates: int = 1500
    trajectories: int = 800
    distill_updates: int = 1500
    baseline_updates: int = 1500
    episodes: int = 300
    own_head_episodes: int = 100


@dataclass
class Parts:
    """Everything one seed trains, for the chapter to inspect."""

    env: gw.GridWorld
    data: gw.Transitions
    world_model: gw.OneBigNet
    labels: gw.Transitions
    used_pairs: set
    starts: torch.Tensor
    goals: torch.Tensor
    one_big_net: gw.OneBigNet
    no_rehearsal: gw.OneBigNet
    teacher_free: gw.OneBigNet


def seeds_of(seed: int) -> dict[str, int]:
    """The seed of each random step of run ``seed``."""
    return {
        "data": seed,
        "world": seed,
        "labels": 1000 + seed,
        "pairs": 2000 + seed,
        "distill": 3000 + seed,
        "baseline": 4000 + seed,
    }


def build(seed: int, config: Config = Config()) -> Parts:
    """Train every net of run ``seed`` (about 12 s on one core)."""
    s = seeds_of(seed)
    env = gw.GridWorld(gw.MAZE_8X8, starts="free", goals="free")
    data = gw.random_interaction(env, config.env_steps, seed=s["data"])
    world = gw.train_world_model(
        env,
        data,
        hidden=config.hidden,
        updates=config.world_updates,
        seed=s["world"],
    )
    labels, used = gw.teacher_labels(
        env, gw.learned_model(world), config.trajectories, seed=s["labels"]
    )
    starts, goals = gw.fresh_pairs(
        env, config.episodes, avoid=used, seed=s["pairs"]
    )
    nets = [
        gw.distill(
            world,
            labels,
            rehearsal=r,
            replay=data,
            updates=config.distill_updates,
            seed=s["distill"],
        )
        for r in (True, False)
    ]
    free = gw.hindsight_cloning(
        env,
        data,
        hidden=config.hidden,
        updates=config.baseline_updates,
        seed=s["baseline"],
    )
    return Parts(
        env, data, world, labels, used, starts, goals, nets[0], nets[1], free
    )


def measure(parts: Parts, seed: int, config: Config = Config()) -> dict:
    """The numbers of one row of the table, from the trained ``parts``."""
    env, starts, goals = parts.env, parts.starts, parts.goals
    planner = gw.evaluate_planner(
        env,
        gw.learned_model(parts.world_model),
        starts,
        goals,
        macs_per_row=parts.world_model.macs("world"),
        seed=seed,
    )
    row = {
        "seed": seed,
        "planner": planner,
        "random": gw.evaluate_random(env, starts, goals, seed=seed),
    }
    n = config.own_head_episodes
    for name in ("one_big_net", "no_rehearsal", "teacher_free"):
        net = getattr(parts, name)
        row[name] = gw.evaluate_policy(env, net, starts, goals)
        row[name + "_sampled"] = gw.evaluate_policy(
            env, net, starts, goals, sample=True, seed=seed
        )
    for name in ("one_big_net", "no_rehearsal"):
        net = getattr(parts, name)
        row[name + "_world_acc"] = gw.world_model_accuracy(net, env)
        row[name + "_own_head"] = gw.evaluate_planner(
            env,
            gw.learned_model(net),
            starts[:n],
            goals[:n],
            macs_per_row=net.macs("world"),
            seed=seed,
        ).success
    row["world_acc"] = gw.world_model_accuracy(parts.world_model, env)
    return row


def run_seed(seed: int, config: Config = Config()) -> dict:
    """Build and measure run ``seed``."""
    return measure(build(seed, config), seed, config)


HEADER = (
    "| seed | planner | MACs/action planner | one big net | MACs/action "
    "net | MAC ratio | CPU-time ratio | no rehearsal | teacher-free (greedy / "
    "sampled) | random | next-cell acc (rehearsal / none) | planning on "
    "own heads (rehearsal / none) |\n" + "|---" * 12 + "|"
)


def format_row(r: dict) -> str:
    """One markdown row of the table."""
    p, o = r["planner"], r["one_big_net"]
    return (
        f"| {r['seed']} | {p.success:.3f} | {p.macs_per_action:,.0f} | "
        f"{o.success:.3f} | {o.macs_per_action:,.0f} | "
        f"{p.macs_per_action / o.macs_per_action:.0f}x | "
        f"{p.cpu_per_action / o.cpu_per_action:.0f}x | "
        f"{r['no_rehearsal'].success:.3f} | "
        f"{r['teacher_free'].success:.3f} / "
        f"{r['teacher_free_sampled'].success:.3f} | "
        f"{r['random'].success:.3f} | "
        f"{r['one_big_net_world_acc']:.3f} / "
        f"{r['no_rehearsal_world_acc']:.3f} | "
        f"{r['one_big_net_own_head']:.2f} / {r['no_rehearsal_own_head']:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the seeds and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m distill_lessons.reproduce onebignet",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trajectories", type=int, default=800)
    parser.add_argument("--env-steps", type=int, default=5000)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    torch.set_num_threads(1)
    config = Config(env_steps=args.env_steps, trajectories=args.trajectories)
    print(HEADER)
    t0, c0 = time.perf_counter(), time.process_time()
    for seed in range(args.seeds):
        print(format_row(run_seed(seed, config)), flush=True)
    print(
        f"\n{args.seeds} seeds in {time.perf_counter() - t0:.0f} s wall, "
        f"{time.process_time() - c0:.0f} s CPU. CPU-time ratio: planner CPU "
        "seconds per action over the single net's (one forward, batch 1)."
    )
    return 0
