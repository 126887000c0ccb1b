"Cross-checks of the spine: B-spline basis, network gradients, determinism and input errors."
import numpy as np
import pytest
from autograd import grad
from autograd.misc import flatten
from hypothesis import given, settings, strategies as st
from scipy.interpolate import BSpline

from kan_nb import KAN, create_dataset, create_kan
from kan_nb.bspline import B_batch, SplineBasis, extend_grid
from kan_nb.training import mse


def paper_f(x):
    return np.exp(np.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2)


def random_grid(rng, G, k):
    inner = np.sort(rng.uniform(-1, 1, G - 1))
    return extend_grid(np.concatenate([[-1.0], inner, [1.0]])[None], k)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 5), G=st.integers(1, 12), seed=st.integers(0, 10_000))
def test_basis_matches_scipy_design_matrix(k, G, seed):
    rng = np.random.default_rng(seed)
    grid = random_grid(rng, G, k)
    x = rng.uniform(-1, 1, (64, 1))
    ours = B_batch(x, grid, k)[:, 0]
    ref = BSpline.design_matrix(x[:, 0], grid[0], k).toarray()
    np.testing.assert_allclose(ours, ref, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 4), G=st.integers(2, 40), seed=st.integers(0, 10_000))
def test_local_basis_equals_dense(k, G, seed):
    rng = np.random.default_rng(seed)
    grid = np.concatenate([random_grid(rng, G, k) for _ in range(2)])
    x = rng.uniform(-2, 2, (50, 2))
    np.testing.assert_allclose(SplineBasis(x, grid, k, local=True).dense(), B_batch(x, grid, k), atol=1e-12)


def test_network_gradient_matches_finite_differences(check_finite_differences):
    model = KAN([2, 3, 2], grid=7, k=3, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (60, 2)), rng.normal(size=(60, 2))
    flat, unflatten = flatten(model.params)
    loss = lambda v: mse(model._forward(unflatten(v), x), y)
    g = grad(loss)(flat)
    check_finite_differences(loss, flat, g, rng.choice(len(flat), 30, replace=False), h=1e-6, atol=1e-7)


def test_same_seed_gives_identical_fit():
    data = create_dataset(paper_f, n_var=2, train_num=200, test_num=100, seed=0)
    h1 = KAN([2, 3, 1], grid=5, seed=4).fit(data, steps=3)
    h2 = create_kan([2, 3, 1], grid=5, seed=4).fit(data, steps=3)
    assert h1["train_loss"] == h2["train_loss"]
    assert h1["test_loss"] == h2["test_loss"]


def test_fit_leaves_global_random_state_alone():
    state = np.random.get_state()[1].copy()
    data = create_dataset(paper_f, n_var=2, train_num=100, test_num=50, seed=0)
    KAN([2, 2, 1], grid=3, seed=0).fit(data, steps=2, opt="Adam", lr=0.01, batch=32)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("seed", range(5))
def test_paper_example_reaches_one_percent(seed):
    data = create_dataset(paper_f, n_var=2, seed=0)
    history = KAN([2, 5, 1], grid=5, seed=seed).fit(data, opt="LBFGS", steps=50)
    assert history["test_loss"][-1] <= 1e-2


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, d: m(np.zeros(2)), "reshape(-1, 2)"),
        (lambda m, d: m(np.zeros((4, 3))), "3 columns but the model expects 2"),
        (lambda m, d: m(np.array([[np.nan, 0.0]])), "non-finite"),
        (lambda m, d: m(np.zeros((0, 2))), "empty"),
        (lambda m, d: m.fit(d, opt="RMSprop"), "opt must be 'LBFGS' or 'Adam'"),
        (lambda m, d: m.fit({**d, "train_label": d["train_label"][:5]}), "train_label rows"),
        (lambda m, d: m.fit({**d, "train_input": np.full((50, 2), np.inf)}), "non-finite"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    model = KAN([2, 3, 1], grid=3, seed=0)
    data = create_dataset(paper_f, n_var=2, train_num=50, test_num=20, seed=0)
    before = flatten(model.params)[0].copy()
    with pytest.raises(ValueError, match=None) as err:
        call(model, data)
    assert message in str(err.value)
    np.testing.assert_array_equal(flatten(model.params)[0], before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(width=[2]), "at least two layer sizes"),
        (dict(width=[2, 0, 1]), "positive integers"),
        (dict(width=[2, 1], grid=0), "grid must be an integer >= 1"),
        (dict(width=[2, 1], k=0), "k must be an integer >= 1"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError) as err:
        KAN(**kwargs)
    assert message in str(err.value)
