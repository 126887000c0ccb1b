"Fast checks of the worked examples: continual learning, a physics-informed loss, the MLP baseline and relativistic addition."
import numpy as np
import autograd.numpy as anp
import pytest
import sympy
from autograd import elementwise_grad

from kan_nb import KAN, create_dataset
from kan_nb.bspline import B_batch
from kan_nb.examples import count_params, fit_lbfgs, init_mlp, mlp_forward
from kan_nb.layer import silu
from kan_nb.training import mse, rmse

CENTERS = np.array([-0.8, -0.4, 0.0, 0.4, 0.8])


def peaks(x):
    return np.exp(-300 * (x - CENTERS) ** 2).sum(1, keepdims=True)


def fit_coefficients(model, x, y, steps):
    def objective(coef):
        return mse(model._forward([dict(model.params[0], coef=coef)], x), y)

    model.params[0]["coef"], _ = fit_lbfgs(objective, model.params[0]["coef"], steps)


def test_continual_learning_keeps_first_peak():
    model = KAN([1, 1], grid=200, k=3, noise_scale=0.1, scale_base_mu=0.0, scale_base_sigma=0.0, seed=0)
    phases = [np.linspace(c - 0.2, c + 0.2, 100)[:, None] for c in CENTERS[:3]]
    fit_coefficients(model, phases[0], peaks(phases[0]), steps=20)
    first_window = np.linspace(-1, -0.65, 50)[:, None]
    after_phase_1 = model(first_window)
    for x in phases[1:]:
        fit_coefficients(model, x, peaks(x), steps=20)
    np.testing.assert_array_equal(model(first_window), after_phase_1)
    assert rmse(model(phases[0]), peaks(phases[0])) < 1e-4


def test_mlp_forgets_first_peak():
    params = init_mlp([1, 16, 16, 1], seed=0)
    phases = [np.linspace(c - 0.2, c + 0.2, 100)[:, None] for c in CENTERS[:2]]
    errors = []
    for x in phases:
        y = peaks(x)
        params, _ = fit_lbfgs(lambda p: mse(mlp_forward(p, x), y), params, steps=10)
        errors.append(rmse(mlp_forward(params, phases[0]), peaks(phases[0])))
    assert errors[0] < 0.05
    assert errors[1] > 10 * errors[0]


def traced_forward(model, params, x):
    for layer, p in zip(model.layers, params):
        spline = anp.einsum("bic,ijc->bij", B_batch(x, layer.grid, layer.k), p["coef"])
        acts = silu(x)[:, :, None] * p["scale_base"] + spline * p["scale_sp"]
        x = anp.sum(acts * layer.mask, axis=1)
    return x


def laplacian(u, X):
    du = elementwise_grad(u)
    return sum(elementwise_grad(lambda Z, d=d: du(Z)[:, d])(X)[:, d] for d in range(2))


def test_pde_residual_decreases():
    rng = np.random.default_rng(0)
    X_in = rng.uniform(-1, 1, (60, 2))
    side = np.linspace(-1, 1, 8, endpoint=False)
    X_bd = np.concatenate([np.stack([side, -np.ones(8)], 1), np.stack([-side, np.ones(8)], 1),
                           np.stack([np.ones(8), side], 1), np.stack([-np.ones(8), -side], 1)])
    x, y = X_in[:, 0], X_in[:, 1]
    f = -np.pi ** 2 * (1 + 4 * y ** 2) * np.sin(np.pi * x) * np.sin(np.pi * y ** 2) \
        + 2 * np.pi * np.sin(np.pi * x) * np.cos(np.pi * y ** 2)
    model = KAN([2, 3, 1], grid=5, seed=0)

    def loss(params):
        lap = laplacian(lambda Z: traced_forward(model, params, Z)[:, 0], X_in)
        return 0.01 * anp.mean((lap - f) ** 2) + anp.mean(traced_forward(model, params, X_bd) ** 2)

    start = loss(model.params)
    params, losses = fit_lbfgs(loss, model.params, steps=2)
    assert losses[-1] < start / 5
    np.testing.assert_allclose(traced_forward(model, model.params, X_in), model(X_in), atol=1e-13)


def test_fit_lbfgs_reaches_least_squares_solution():
    rng = np.random.default_rng(1)
    A, b = rng.normal(size=(30, 4)), rng.normal(size=30)
    best, losses = fit_lbfgs(lambda p: anp.sum((anp.dot(A, p["w"]) - b) ** 2), dict(w=np.zeros(4)), steps=2)
    np.testing.assert_allclose(best["w"], np.linalg.lstsq(A, b, rcond=None)[0], atol=1e-7)
    assert losses[-1] <= losses[0]


def test_fit_lbfgs_rejects_bad_steps():
    with pytest.raises(ValueError, match="steps must be an integer >= 1; got 0"):
        fit_lbfgs(lambda p: 0.0, dict(w=np.zeros(2)), steps=0)


def test_count_params_of_kan_and_mlp():
    assert count_params(init_mlp([2, 16, 1])) == 2 * 16 + 16 + 16 + 1
    assert count_params(KAN([2, 1, 1], grid=5).params) == 3 * (5 + 3 + 2)


def test_relativistic_addition_recovered():
    data = create_dataset(lambda x: (x[:, [0]] + x[:, [1]]) / (1 + x[:, [0]] * x[:, [1]]), n_var=2,
                          ranges=(-0.9, 0.9), seed=0)
    model = KAN([2, 1, 1], grid=10, seed=0)
    model.fit(data, steps=20)
    model.fix_symbolic(0, 0, 0, "arctanh")
    model.fix_symbolic(0, 1, 0, "arctanh")
    model.fix_symbolic(1, 0, 0, "tanh")
    hist = model.fit(data, steps=20, update_grid=False)
    assert hist["test_loss"][-1] < 1e-9
    u, v = sympy.symbols("x_1 x_2")
    assert model.symbolic_formula(digits=4)[0] == sympy.tanh(sympy.atanh(u) + sympy.atanh(v))
