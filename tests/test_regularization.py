"Checks of the sparsity penalty `KAN.reg`: value, gradient, finite at dead nodes, argument errors, fit history."
import numpy as np
import pytest
from autograd import grad
from autograd.misc import flatten

from kan_nb import KAN, create_dataset
from kan_nb.regularization import edge_magnitudes, edge_std, layer_entropy


def paper_f(x):
    return np.exp(np.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2)


@pytest.fixture(scope="module")
def data():
    return create_dataset(paper_f, n_var=2, train_num=200, test_num=100, seed=0)


def loop_penalty(model, x, lamb_l1, lamb_entropy, lamb_coef, lamb_coefdiff):
    "The penalty computed edge by edge with numpy"
    total = 0.0
    _, acts = model._forward(model.params, x, edges=True)
    for a, p in zip(acts, model.params):
        n_in, n_out = a["edges"].shape[1:]
        m = np.empty((n_in, n_out))
        for i in range(n_in):
            for j in range(n_out):
                m[i, j] = np.std(a["edges"][:, i, j], ddof=1) / (np.std(a["x"][:, i], ddof=1) + 0.1)
        entropy = 0.0
        for j in range(n_out):
            q = m[:, j] / (m[:, j].sum() + 1)
            entropy -= np.sum(q * np.log2(q + 1e-4)) / n_out
        for i in range(n_in):
            q = m[i] / (m[i].sum() + 1)
            entropy -= np.sum(q * np.log2(q + 1e-4)) / n_in
        total += lamb_l1 * m.sum() + lamb_entropy * entropy
        coef = p["coef"]
        total += lamb_coef * np.abs(coef).mean(-1).sum() + lamb_coefdiff * np.abs(np.diff(coef, axis=-1)).mean(-1).sum()
    return total


@pytest.mark.parametrize("weights", [(1.0, 2.0, 0.0, 0.0), (0.3, 0.0, 1.0, 0.5), (0.0, 5.0, 0.0, 2.0)])
def test_penalty_matches_loop(data, weights):
    model = KAN([2, 4, 3, 1], grid=4, seed=3)
    x = data["train_input"]
    _, acts = model._forward(model.params, x, edges=True)
    assert abs(model.reg(model.params, acts, *weights) - loop_penalty(model, x, *weights)) < 1e-10


def test_gradient_matches_finite_differences(data, check_finite_differences):
    model = KAN([2, 3, 1], grid=3, seed=2)
    x = data["train_input"][:100]
    flat, unflatten = flatten(model.params)

    def penalty(v):
        params = unflatten(v)
        return model.reg(params, model._forward(params, x, edges=True)[1], 1.0, 2.0, 0.2, 0.2)

    g = grad(penalty)(flat)
    indices = np.random.default_rng(1).choice(len(flat), 30, replace=False)
    check_finite_differences(penalty, flat, g, indices, h=1e-6, atol=1e-6)


def test_gradient_finite_for_dead_node_and_masked_edge(data):
    model = KAN([2, 3, 1], grid=3, seed=0)
    model.layers[0].mask[:, 1] = 0.0
    model.layers[1].mask[2, 0] = 0.0
    flat, unflatten = flatten(model.params)

    def penalty(v):
        params = unflatten(v)
        return model.reg(params, model._forward(params, data["train_input"], edges=True)[1])

    assert np.isfinite(penalty(flat))
    assert np.isfinite(grad(penalty)(flat)).all()


def test_constant_edge_has_zero_magnitude():
    assert np.allclose(edge_std(np.full((20, 3, 2), 4.0)), 1e-8, atol=1e-20)
    acts = [dict(x=np.linspace(-1, 1, 20)[:, None], edges=np.full((20, 1, 1), 7.0))]
    assert edge_magnitudes(acts)[0][0, 0] < 1e-7


def test_entropy_prefers_one_edge():
    one = np.zeros((3, 3))
    one[1, 2] = 0.9
    spread = np.full((3, 3), 0.1)
    assert layer_entropy(np.zeros((3, 3))) == 0.0
    assert layer_entropy(spread) > 2 * layer_entropy(one)


@pytest.mark.parametrize("name", ["lamb_l1", "lamb_entropy", "lamb_coef", "lamb_coefdiff"])
def test_negative_weight_rejected(data, name):
    model = KAN([2, 2, 1], grid=3, seed=0)
    _, acts = model._forward(model.params, data["train_input"], edges=True)
    with pytest.raises(ValueError, match=f"{name} must be >= 0.0; got -0.5"):
        model.reg(model.params, acts, **{name: -0.5})


def test_fit_records_penalty_and_rejects_negative_lamb(data):
    model = KAN([2, 3, 1], grid=3, seed=0)
    coef = model.params[0]["coef"].copy()
    with pytest.raises(ValueError, match="lamb must be >= 0"):
        model.fit(data, steps=1, lamb=-1e-3)
    assert np.array_equal(model.params[0]["coef"], coef)
    history = model.fit(data, steps=3, lamb=1e-2)
    assert len(history["reg"]) == 3
    assert np.isfinite(history["reg"]).all()
    acts = model._forward(model.params, data["train_input"], edges=True)[1]
    assert abs(history["reg"][-1] - model.reg(model.params, acts)) < 1e-10


def test_penalty_lowers_magnitudes(data):
    plain, sparse = KAN([2, 5, 1], grid=3, seed=0), KAN([2, 5, 1], grid=3, seed=0)
    h_plain = plain.fit(data, steps=8)
    h_sparse = sparse.fit(data, steps=8, lamb=1e-2)
    assert h_sparse["reg"][-1] < h_plain["reg"][-1]


@pytest.mark.parametrize("grid", [3, 12])
def test_fixed_first_layer_gradient_matches_autograd(data, grid):
    "`fit`'s gradient takes the first layer's spreads from its fixed inputs; it must equal autograd on the traced loss"
    from kan_nb.training import _reg_value_grad, _value_and_grad_mse, mse

    model = KAN([2, 4, 1], grid=grid, seed=1)
    model.layers[0].mask[1, 2] = 0
    x, y = data["train_input"], data["train_label"]
    weights = dict(lamb_l1=1.0, lamb_entropy=2.0, lamb_coef=0.3, lamb_coefdiff=0.2)
    reg_value_grad = _reg_value_grad(model, weights)
    assert reg_value_grad.fixed_inputs
    value, grads = _value_and_grad_mse(model, model.params, x, y, 0.01, reg_value_grad)
    flat, unflatten = flatten(model.params)

    def objective(v):
        params = unflatten(v)
        pred, acts = model._forward(params, x, edges=True)
        return mse(pred, y) + 0.01 * model.reg(params, acts, **weights)

    ref = grad(objective)(flat)
    assert abs(value - objective(flat)) <= 1e-14 * abs(value)
    assert np.abs(flatten(grads)[0] - ref).max() <= 1e-12 * np.abs(ref).max()
