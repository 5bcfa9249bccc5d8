"""Tests of distill_lessons.gridworld (chapter 9)."""

import pytest
import torch

from distill_lessons import gridworld as gw

UP, RIGHT, DOWN, LEFT = range(4)

# A 3x4 map: row 0 "S.#G", row 1 "..#.", row 2 "....".
# Cells are numbered row * 4 + col.
TINY = "S.#G\n..#.\n...."


def tiny() -> gw.GridWorld:
    return gw.GridWorld(TINY, max_steps=10)


def test_the_marked_start_and_goal_cells_are_found():
    env = tiny()
    assert env.starts == [0]
    assert env.goals == [3]
    assert env.n_cells == 12
    assert env.free_cells == [0, 1, 3, 4, 5, 7, 8, 9, 10, 11]


def test_moves_go_one_cell_and_walls_and_edges_stop_them():
    env = tiny()
    # from cell 1 (row 0, col 1): up is the edge, right is the wall at 2
    assert env.next_cell[1].tolist() == [1, 1, 5, 0]
    # from cell 8 (row 2, col 0): up to 4, right to 9, down edge, left edge
    assert env.next_cell[8].tolist() == [4, 9, 8, 8]
    # from cell 7 (row 1, col 3): up to the goal 3, left is the wall at 6
    assert env.next_cell[7].tolist() == [3, 7, 11, 7]


def test_the_reward_is_one_exactly_when_the_goal_is_entered():
    env = tiny()
    pos = torch.tensor([7, 11, 1, 3])
    act = torch.tensor([UP, UP, RIGHT, RIGHT])
    nxt, reward = env.step(pos, act, torch.tensor(3))
    assert nxt.tolist() == [3, 7, 1, 3]
    # entering the goal pays; standing on it and bumping also ends there
    assert reward.tolist() == [1.0, 0.0, 0.0, 1.0]


def test_distances_count_moves_around_the_wall():
    env = tiny()
    dist = env.distances(3)
    # 0 -> 1? no: 0 down 4, down 8, right 9, 10, 11, up 7, up 3 = 7 moves
    assert int(dist[0]) == 7
    assert int(dist[11]) == 2
    assert int(dist[2]) == -1  # a wall


def test_the_planner_finds_the_shortest_path_in_the_true_model():
    env = tiny()
    path, rows = gw.plan_path(env.true_model(), 0, 3, max_depth=20)
    assert len(path) == 7
    pos = 0
    for a in path:
        pos = int(env.next_cell[pos, a])
    assert pos == 3
    assert rows > 0


def test_planned_paths_are_as_short_as_breadth_first_distances_say():
    env = gw.GridWorld(gw.MAZE_8X8, starts="free", goals="free")
    model = env.true_model()
    for start, goal in [(0, 63 - 1), (9 + 2, 56), (20, 37)]:
        if env.wall[start] or env.wall[goal]:
            continue
        path, _ = gw.plan_path(model, start, goal, max_depth=40)
        assert len(path) == int(env.distances(goal)[start])


def test_the_planner_gives_up_when_the_goal_is_out_of_reach():
    env = tiny()
    path, rows = gw.plan_path(env.true_model(), 0, 3, max_depth=3)
    assert path is None
    assert rows > 0


def test_the_maze_of_the_chapter_has_43_free_cells():
    env = gw.GridWorld(gw.MAZE_8X8, starts="free", goals="free")
    assert len(env.free_cells) == 43 == len(env.starts) == len(env.goals)


def test_a_map_without_a_goal_is_refused():
    with pytest.raises(ValueError, match="no goal"):
        gw.GridWorld("S..\n...")


def test_a_map_without_a_start_is_refused():
    with pytest.raises(ValueError, match="no start"):
        gw.GridWorld("..G\n...")


def test_a_start_inside_a_wall_is_refused():
    with pytest.raises(ValueError, match="starts.*inside a wall"):
        gw.GridWorld(TINY, starts=[(0, 2)])


def test_a_goal_off_the_grid_is_refused():
    with pytest.raises(ValueError, match="grid"):
        gw.GridWorld(TINY, goals=[(5, 0)])


@pytest.mark.parametrize(
    "layout, word",
    [("S.\n.G.", "same length"), ("S?G", "may only use"), ("", "at least")],
)
def test_malformed_layouts_are_refused(layout, word):
    with pytest.raises(ValueError, match=word):
        gw.GridWorld(layout)


def test_random_play_follows_the_true_dynamics_and_ends_at_the_goal():
    env = gw.GridWorld(TINY, starts="free", max_steps=10)
    data = gw.random_interaction(env, 500, seed=0)
    assert len(data) == 500
    assert torch.equal(
        data.next_positions, env.next_cell[data.positions, data.actions]
    )
    assert torch.equal(data.rewards, (data.next_positions == 3).float())
    # after a reward, the next step belongs to a new episode
    after = (data.rewards[:-1] > 0).nonzero()[:, 0] + 1
    assert (data.episodes[after] == data.episodes[after - 1] + 1).all()
    # no episode is longer than max_steps
    assert torch.bincount(data.episodes).max() <= 10


def test_macs_count_the_dense_layers_of_each_query():
    net = gw.OneBigNet(12, hidden=5)
    trunk = (2 * 12 + 4) * 5 + 5 * 5
    assert net.macs("world") == trunk + 5 * (12 + 1)
    assert net.macs("policy") == trunk + 5 * 4


def test_the_random_policy_never_wins_where_the_goal_is_unreachable():
    env = gw.GridWorld("S#G", max_steps=5)
    result = gw.evaluate_random(
        env, torch.tensor([0, 0]), torch.tensor([2, 2]), seed=0
    )
    assert result.success == 0.0


def test_the_planner_on_the_true_model_wins_in_the_fewest_moves():
    env = tiny()
    result = gw.evaluate_planner(
        env,
        env.true_model(),
        torch.tensor([0, 11]),
        torch.tensor([3, 3]),
        macs_per_row=10,
    )
    assert result.success == 1.0
    assert result.moves == (7 + 2) / 2
    assert result.macs_per_action == 10 * result.rows_per_action


def test_fresh_pairs_avoid_the_given_pairs():
    env = gw.GridWorld(TINY, starts="free", goals="free")
    avoid = {(0, 3), (1, 3), (4, 3)}
    starts, goals = gw.fresh_pairs(env, 200, avoid=avoid, seed=0)
    pairs = set(zip(starts.tolist(), goals.tolist(), strict=True))
    assert not pairs & avoid
    assert all(s != g for s, g in pairs)


def test_distillation_without_rehearsal_needs_no_replay_but_with_it_does():
    env = tiny()
    net = gw.OneBigNet(env.n_cells, hidden=8)
    labels = gw.random_interaction(env, 20, seed=0)
    with pytest.raises(ValueError, match="replay"):
        gw.distill(net, labels, rehearsal=True, seed=0, updates=1)
    out = gw.distill(net, labels, rehearsal=False, seed=0, updates=1)
    assert out is not net


def test_a_learned_world_model_predicts_the_tiny_map_exactly():
    env = gw.GridWorld(TINY, starts="free", goals="free", max_steps=10)
    data = gw.random_interaction(env, 1500, seed=0)
    net = gw.train_world_model(env, data, hidden=32, updates=400, seed=0)
    assert gw.world_model_accuracy(net, env) == 1.0


def test_cloning_only_successes_refuses_data_without_a_success():
    env = gw.GridWorld("S#G", max_steps=3)
    data = gw.random_interaction(env, 30, seed=0)
    assert data.rewards.sum() == 0  # the wall makes the goal unreachable
    with pytest.raises(ValueError, match="no step"):
        gw.hindsight_cloning(env, data, successes_only=True, seed=0)


def test_hindsight_cloning_learns_the_only_way_in_a_corridor():
    env = gw.GridWorld("S..G", starts="free", goals="free", max_steps=6)
    data = gw.random_interaction(env, 600, seed=0)
    net = gw.hindsight_cloning(env, data, hidden=16, updates=300, seed=0)
    with torch.no_grad():
        act = net.policy(torch.tensor([0, 1, 2]), torch.tensor([3, 3, 3]))
    # in a one-row corridor the goal to the right is reached by moving right
    assert act.argmax(-1).tolist() == [RIGHT, RIGHT, RIGHT]


def test_a_step_from_outside_the_grid_or_inside_a_wall_is_refused():
    env = tiny()
    # -1 would otherwise index from the end: cell 11, next to nothing.
    with pytest.raises(ValueError, match=r"positions must lie in 0\.\.11"):
        env.step(torch.tensor([-1]), torch.tensor([UP]), torch.tensor([3]))
    with pytest.raises(ValueError, match=r"goals must lie in 0\.\.11"):
        env.step(torch.tensor([7]), torch.tensor([UP]), torch.tensor([12]))
    with pytest.raises(ValueError, match="free cells, not walls"):
        env.step(torch.tensor([2]), torch.tensor([UP]), torch.tensor([3]))
