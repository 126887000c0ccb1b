"Grid extension: knots, function preservation, errors, the sparse-data warning and the staircase quality targets."
import warnings

import numpy as np
import pytest

from kan_nb import KAN, create_dataset
from kan_nb.bspline import extend_grid
from kan_nb.grid import SparseGridWarning, _refine_knots


def paper_f(x):
    return np.exp(np.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2)


@pytest.fixture(scope="module")
def data():
    return create_dataset(paper_f, n_var=2, train_num=1000, test_num=1000, seed=0)


def relative_change(before, after):
    return np.sqrt(np.mean((after - before) ** 2) / np.mean(before**2))


def state_of(model):
    "Copies of every grid and parameter array, and the grid size"
    return ([layer.grid.copy() for layer in model.layers],
            [{name: value.copy() for name, value in p.items()} for p in model.params], model.grid)


def assert_same_state(model, state):
    grids, params, G = state
    assert model.grid == G
    for layer, grid in zip(model.layers, grids):
        np.testing.assert_array_equal(layer.grid, grid)
    for p, q in zip(model.params, params):
        for name in q:
            np.testing.assert_array_equal(p[name], q[name])


def test_refined_knots_contain_old_knots_when_nested():
    k = 3
    old = extend_grid(np.array([[-1.0, -0.7, -0.5, 0.0, 0.6, 1.0]]), k)
    for factor in (2, 3, 4):
        new = _refine_knots(old, k, 5 * factor)
        np.testing.assert_array_equal(new[:, k:-k][:, ::factor], old[:, k:-k])


def test_refined_knots_keep_ends_and_order():
    k = 3
    rng = np.random.default_rng(1)
    inner = np.sort(rng.uniform(-1, 1, (3, 6)), axis=1)
    old = extend_grid(np.concatenate([-np.ones((3, 1)), inner, np.ones((3, 1))], axis=1), k)
    new = _refine_knots(old, k, 13)
    assert new.shape == (3, 13 + 2 * k + 1)
    np.testing.assert_array_equal(new[:, [k, -k - 1]], old[:, [k, -k - 1]])
    np.testing.assert_array_equal(new[:, :k], old[:, :k])
    np.testing.assert_array_equal(new[:, -k:], old[:, -k:])
    assert (np.diff(new, axis=1) > 0).all()


@pytest.mark.parametrize("width", [[2, 1, 1], [2, 3, 1]])
def test_grid_extend_keeps_function_5_10_20(data, width):
    model = KAN(width, grid=5, seed=0)
    model.fit(data, steps=20)
    x = data["train_input"]
    for G in (10, 20):
        before = model(x)
        model.grid_extend(G)
        assert relative_change(before, model(x)) <= 1e-3


@pytest.mark.parametrize("ridge, tolerance", [(1e-12, 1e-8), (0.0, 1e-12)])
def test_grid_extend_nested_refinement_is_nearly_exact(data, ridge, tolerance):
    # with G' a multiple of G the new knot vector contains the old one, so only the ridge changes the function
    model = KAN([2, 1, 1], grid=5, seed=0)
    model.fit(data, steps=10)
    before = model(data["train_input"])
    model.grid_extend(10, ridge=ridge)
    assert relative_change(before, model(data["train_input"])) <= tolerance


def test_grid_extend_keeps_function_in_extension_cells():
    # a few steps after the only grid update, many hidden inputs lie beyond the hidden layer's un-extended knots
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (300, 2))
    y = np.sin(np.pi * x[:, :1]) + x[:, 1:] ** 2
    data = dict(train_input=x, train_label=y, test_input=x[:50], test_label=y[:50])
    model = KAN([2, 2, 1], grid=3, seed=0)
    model.fit(data, steps=3)
    hidden = model._forward(model.params, x, edges=True)[1][1]["x"]
    knots = model.layers[1].grid[:, 3:-3]
    assert ((hidden < knots[:, 0]) | (hidden > knots[:, -1])).mean() > 0.1
    before = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.grid_extend(6, ridge=0.0)
    assert relative_change(before, model(x)) <= 1e-12


def test_grid_extend_updates_grid_in_place(data):
    model = KAN([2, 3, 1], grid=5, k=2, seed=0)
    model.fit(data, steps=2)
    masks = [layer.mask.copy() for layer in model.layers]
    scales = [p["scale_base"].copy() for p in model.params]
    assert model.grid_extend(12) is model
    assert model.grid == 12
    assert [layer.G for layer in model.layers] == [12, 12]
    assert [p["coef"].shape for p in model.params] == [(2, 3, 14), (3, 1, 14)]
    for layer, mask in zip(model.layers, masks):
        np.testing.assert_array_equal(layer.mask, mask)
    for p, scale in zip(model.params, scales):
        np.testing.assert_array_equal(p["scale_base"], scale)


@pytest.mark.parametrize("new_grid, message", [
    (5, "must be larger than the current grid G = 5; got 5"),
    (3, "must be larger than the current grid G = 5; got 3"),
    (0, "new_grid must be an integer >= 1; got 0"),
    (10.5, "new_grid must be an integer"),
    ("10", "new_grid must be an integer"),
    (True, "new_grid must be an integer"),
    (None, "new_grid must be an integer"),
])
def test_grid_extend_rejects_bad_grid_unchanged(data, new_grid, message):
    model = KAN([2, 1, 1], grid=5, seed=0)
    model.fit(data, steps=2)
    state = state_of(model)
    with pytest.raises(ValueError, match=message):
        model.grid_extend(new_grid)
    assert_same_state(model, state)


def test_grid_extend_rejects_negative_ridge_unchanged(data):
    model = KAN([2, 1, 1], grid=5, seed=0)
    model.fit(data, steps=2)
    state = state_of(model)
    with pytest.raises(ValueError, match="ridge must be >= 0"):
        model.grid_extend(10, ridge=-1e-3)
    assert_same_state(model, state)


def test_grid_extend_needs_training_inputs():
    model = KAN([2, 1, 1], grid=5, seed=0)
    state = state_of(model)
    with pytest.raises(ValueError, match="model.train_input is None"):
        model.grid_extend(10)
    assert_same_state(model, state)


def test_grid_extend_rejects_bad_stored_inputs_unchanged():
    model = KAN([2, 1, 1], grid=5, seed=0)
    model.train_input = np.zeros((10, 3))
    state = state_of(model)
    with pytest.raises(ValueError, match="model.train_input has 3 columns but the model expects 2"):
        model.grid_extend(10)
    assert_same_state(model, state)


def test_grid_extend_warns_when_data_sparse(data):
    model = KAN([2, 1, 1], grid=5, seed=0)
    model.train_input = data["train_input"][:60]
    with pytest.warns(SparseGridWarning, match=r"layer 0 node 0: \d+% of the intervals"):
        model.grid_extend(30)
    assert model.grid == 30


@pytest.mark.parametrize("grid_eps, new_grid", [(1.0, 200), (0.02, 300)])
def test_grid_extend_warns_on_too_few_points(data, grid_eps, new_grid):
    # uniform knots (grid_eps=1) leave random gaps; quantile knots give each interval about N/G' samples
    model = KAN([2, 1, 1], grid=5, seed=0, grid_eps=grid_eps)
    model.fit(data, steps=5)
    with pytest.warns(SparseGridWarning, match=f"at G = {new_grid}"):
        model.grid_extend(new_grid)


@pytest.mark.parametrize("grid_eps, new_grid", [(1.0, 50), (0.02, 100)])
def test_grid_extend_silent_when_data_dense(data, grid_eps, new_grid):
    # the staircase's start (equal base weights): a network in the paper's local minimum crowds its hidden values
    # into a few intervals, which is sparse data for uniform knots however many samples there are
    model = KAN([2, 1, 1], grid=5, seed=0, grid_eps=grid_eps, scale_base_mu=1.0, scale_base_sigma=0.0)
    model.fit(data, steps=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.grid_extend(new_grid)


def run_staircase(data, grids, seed=0):
    "Test RMSE at the end of each grid for the staircase of the grid extension chapter"
    model = KAN([2, 1, 1], grid=grids[0], seed=seed, scale_base_mu=1.0, scale_base_sigma=0.0, grid_eps=1.0,
                grid_margin=0.01)
    res = {}
    for G in grids:
        if G != grids[0]:
            model.grid_extend(G)
        res[G] = model.fit(data, steps=50)["test_loss"][-1]
    return res


# With data seed 3 one test point has its hidden value 0.036 beyond those of all the training inputs, more than the
# grid margin of 0.01, because no training point combines the largest sin(pi x) with the largest y^2. There the outer
# spline is evaluated in an extension cell, which lacks one of the k+1 bases of a full polynomial piece, and that
# point alone pushes the test RMSE above the target at G = 50, while the RMSE over the other test points stays
# below 1e-5 there (bench/grid_extension.py prints both).
SEEDS_HIT_BY_EDGE_POINTS = {3}


@pytest.mark.parametrize("data_seed", [
    pytest.param(s, marks=pytest.mark.xfail(strict=True, reason="test points outside the training range"))
    if s in SEEDS_HIT_BY_EDGE_POINTS else s
    for s in range(4)
])
def test_staircase_meets_paper_targets(data_seed):
    data = create_dataset(paper_f, n_var=2, train_num=1000, test_num=1000, seed=data_seed)
    res = run_staircase(data, [3, 5, 10, 20, 50])
    assert res[20] <= 4e-5
    assert res[50] <= 1e-5


def test_sine_rmse_falls_like_g_to_minus_4():
    data = create_dataset(lambda x: np.sin(np.pi * x), n_var=1, train_num=1000, test_num=1000, seed=0)
    model = KAN([1, 1], grid=5, seed=0, scale_base_mu=1.0, scale_base_sigma=0.0)
    grids, rmse = [5, 10, 20, 50, 100], []
    for G in grids:
        if G != grids[0]:
            model.grid_extend(G)
        rmse.append(model.fit(data, steps=50, update_grid=False)["test_loss"][-1])
    slope = np.polyfit(np.log(grids[1:]), np.log(rmse[1:]), 1)[0]
    assert -4.5 <= slope <= -3.5


def test_staircase_3000_points_meets_target():
    data = create_dataset(paper_f, n_var=2, train_num=3000, test_num=1000, seed=0)
    res = run_staircase(data, [3, 5, 10, 20, 50, 100])
    assert res[100] <= 1e-7
