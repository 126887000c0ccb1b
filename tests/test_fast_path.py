"Cross-checks of the fast path against the readable reference: local basis, layer primitive, basis cache, memory."
import tracemalloc

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from autograd.misc import flatten
from hypothesis import given, settings, strategies as st

from kan_nb import KAN
from kan_nb.bspline import B_batch, B_batch_deriv, SplineBasis, extend_grid, spline_edges, spline_sum
from kan_nb.layer import (_flat_coef, init_layer, layer_backward, layer_basis, layer_forward, layer_value,
                          numeric_branch, silu)
from kan_nb.training import _reg_value_grad, _value_and_grad_mse, create_dataset, mse


def random_grid(rng, in_dim, G, k):
    inner = np.sort(rng.uniform(-1, 1, (in_dim, G - 1)), axis=1)
    ends = np.ones((in_dim, 1))
    return extend_grid(np.concatenate([-ends, inner, ends], axis=1), k)


def samples_with_knots(rng, grid, k, n):
    "Uniform samples beyond the extended grid on both sides, plus every knot of every feature"
    x = rng.uniform(-3, 3, (n, grid.shape[0]))
    return np.concatenate([x, grid.T], axis=0)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 5), G=st.integers(1, 60), local=st.booleans(), seed=st.integers(0, 10_000))
def test_basis_products_match_dense_reference(k, G, local, seed):
    rng = np.random.default_rng(seed)
    grid = random_grid(rng, 3, G, k)
    x = samples_with_knots(rng, grid, k, 80)
    batch, n_basis = len(x), G + k
    B, dB = B_batch(x, grid, k), B_batch_deriv(x, grid, k)
    C = rng.normal(size=(3 * n_basis, 2))
    C3 = C.reshape(3, n_basis, 2)
    g, ge = rng.normal(size=(batch, 2)), rng.normal(size=(batch, 3, 2))
    slopes = np.einsum("bic,icj->bij", dB, C3)
    basis = SplineBasis(x, grid, k, local=local)
    np.testing.assert_allclose(basis.dense(), B, atol=1e-12)
    np.testing.assert_allclose(basis.summed(C), np.einsum("bic,icj->bj", B, C3), atol=1e-12)
    np.testing.assert_allclose(basis.summed_T(g), np.einsum("bic,bj->icj", B, g).reshape(C.shape), atol=1e-11)
    np.testing.assert_allclose(basis.summed_dx(C, g), (slopes * g[:, None]).sum(-1), atol=1e-10)
    np.testing.assert_allclose(basis.edges(C), np.einsum("bic,icj->bij", B, C3), atol=1e-12)
    np.testing.assert_allclose(basis.edges_T(ge), np.einsum("bic,bij->icj", B, ge).reshape(C.shape), atol=1e-11)
    np.testing.assert_allclose(basis.edges_dx(C, ge), (slopes * ge).sum(-1), atol=1e-10)
    np.testing.assert_allclose(basis.edge_slopes(C), slopes, atol=1e-10)


def test_local_chunks_agree_with_one_chunk(monkeypatch):
    import kan_nb.bspline as bspline

    rng = np.random.default_rng(0)
    grid = random_grid(rng, 4, 30, 3)
    x, C, g = rng.uniform(-1.2, 1.2, (300, 4)), rng.normal(size=(4 * 33, 5)), rng.normal(size=(300, 5))
    whole = SplineBasis(x, grid, 3, local=True).summed_dx(C, g)
    monkeypatch.setattr(bspline, "CHUNK_SIZE", 7)  # one sample per chunk
    np.testing.assert_allclose(SplineBasis(x, grid, 3, local=True).summed_dx(C, g), whole, atol=1e-13)


def traced_numeric(layer, p, x, basis, edges):
    "The numeric branch with every operation traced by autograd: the reference for `numeric_branch`"
    C = _flat_coef(layer, p)
    w_b = p["scale_base"] * layer.mask
    if edges:
        return silu(x)[:, :, None] * w_b[None] + spline_edges(x, C, basis)
    return anp.dot(silu(x), w_b) + spline_sum(x, C, basis)


@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize("edges", [False, True])
def test_numeric_branch_gradients_match_traced(local, edges):
    rng = np.random.default_rng(1)
    layer, p = init_layer(3, 4, G=9, k=3, rng=rng)
    p["coef"] = rng.normal(size=p["coef"].shape)
    layer.mask[0, 2] = 0
    x0 = rng.uniform(-1.4, 1.4, (70, 3))
    weights = rng.normal(size=(70, 3, 4) if edges else (70, 4))
    basis = SplineBasis(x0, layer.grid, 3, local=local)

    def fast(x, coef, scale_base, scale_sp):
        out = numeric_branch(x, coef, scale_base, scale_sp, layer.mask, basis, edges)
        return anp.sum(anp.sin(out) * weights)

    def traced(x, coef, scale_base, scale_sp):
        q = dict(p, coef=coef, scale_base=scale_base, scale_sp=scale_sp)
        return anp.sum(anp.sin(traced_numeric(layer, q, x, basis, edges)) * weights)

    args = (x0, p["coef"], p["scale_base"], p["scale_sp"])
    assert abs(fast(*args) - traced(*args)) < 1e-12
    for arg in range(4):
        np.testing.assert_allclose(grad(fast, arg)(*args), grad(traced, arg)(*args), atol=1e-12)


def test_network_gradient_matches_finite_differences_on_local_path(monkeypatch, check_finite_differences):
    import kan_nb.bspline as bspline

    monkeypatch.setattr(bspline, "DENSE_MAX_SIZE", 0)  # small arrays would otherwise stay dense
    model = KAN([3, 4, 2], grid=25, k=3, seed=2)
    assert layer_basis(model.layers[0], np.zeros((80, 3))).local
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-1, 1, (80, 3)), rng.normal(size=(80, 2))
    flat, unflatten = flatten(model.params)
    loss = lambda v: mse(model._forward(unflatten(v), x), y)
    g = grad(loss)(flat)
    check_finite_differences(loss, flat, g, rng.choice(len(flat), 25, replace=False), h=1e-6, atol=1e-7)


def test_dense_and_local_networks_agree():
    model = KAN([2, 5, 3], grid=12, k=3, seed=0)
    x = np.random.default_rng(4).uniform(-1.5, 1.5, (200, 2))
    outs = {}
    for local in (False, True):
        h = x
        for layer, p in zip(model.layers, model.params):
            h = layer_forward(layer, p, h, local=local)
        outs[local] = h
    np.testing.assert_allclose(outs[True], outs[False], atol=1e-12)


def test_basis_cache_recomputes_after_changes():
    layer, _ = init_layer(2, 3, G=5, k=3, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).uniform(-1, 1, (40, 2))
    first = layer_basis(layer, x)
    assert layer_basis(layer, x.copy()) is first
    x[3, 1] = 0.5
    assert layer_basis(layer, x) is not first
    np.testing.assert_allclose(layer_basis(layer, x).dense(), B_batch(x, layer.grid, 3), atol=1e-12)
    layer.grid[:, :] *= 1.5  # knots changed in place
    np.testing.assert_allclose(layer_basis(layer, x).dense(), B_batch(x, layer.grid, 3), atol=1e-12)


def test_numeric_model_skips_symbolic_branch(monkeypatch):
    import kan_nb.layer as layer_module

    def fail(*args):
        raise AssertionError("symbolic branch evaluated for a model without symbolic edges")

    monkeypatch.setattr(layer_module, "symbolic_values", fail)
    model = KAN([2, 3, 1], grid=5, seed=0)
    model(np.zeros((4, 2)))
    model._forward(model.params, np.zeros((4, 2)), edges=True)


def peak_bytes_of_gradient(G, batch):
    model = KAN([4, 8, 1], grid=G, k=3, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (batch, 4)), rng.normal(size=(batch, 1))
    flat, unflatten = flatten(model.params)
    loss = lambda v: mse(model._forward(unflatten(v), x), y)
    grad(loss)(flat)  # warm up imports and caches
    tracemalloc.start()
    grad(loss)(flat)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_gradient_memory_does_not_grow_with_grid():
    # a dense basis needs batch*in*(G+k) doubles per layer, 50 times more at G=400 (403 bases) than at G=5 (8)
    small, large = peak_bytes_of_gradient(5, 4000), peak_bytes_of_gradient(400, 4000)
    dense_layer_bytes = 4000 * 8 * (400 + 3) * 8
    assert large < 2 * small
    assert large < dense_layer_bytes / 4


def test_basis_form_choice_by_grid_and_size():
    x = np.zeros((1000, 2))
    assert not SplineBasis(x, extend_grid(np.linspace(-1, 1, 4)[None].repeat(2, 0), 3), 3).local  # G+k = 6
    assert not SplineBasis(x, extend_grid(np.linspace(-1, 1, 31)[None].repeat(2, 0), 3), 3).local  # small array
    assert SplineBasis(x, extend_grid(np.linspace(-1, 1, 101)[None].repeat(2, 0), 3), 3).local  # 218000 entries


def symbolic_model(seed=1, width=(2, 3, 2), grid=4):
    "A model with masked edges and symbolic edges in every layer, hidden values partly beyond the grid"
    model = KAN(list(width), grid=grid, seed=seed)
    rng = np.random.default_rng(seed)
    for p in model.params:
        p["coef"] = rng.normal(size=p["coef"].shape) * 0.5
    model.layers[1].grid = model.layers[1].grid * 0.7
    model.layers[0].mask[1, 2] = model.layers[1].mask[0, 1] = 0
    model.layers[0].sym_mask[1, 2] = model.layers[1].sym_mask[0, 1] = model.layers[1].sym_mask[2, 0] = 1
    model.layers[0].sym_fns[1, 2] = ("sin", anp.sin)
    model.layers[1].sym_fns[0, 1] = ("exp", lambda z: anp.exp(anp.minimum(z, 100.0)))
    model.layers[1].sym_fns[2, 0] = ("x^2", lambda z: z * z)
    model.params[0]["affine"][1, 2] = [2.0, 0.3, -1.0, 0.2]
    model.params[1]["affine"][0, 1] = [0.8, -0.1, 1.2, 0.05]
    model.params[1]["affine"][2, 0] = [-0.6, 0.4, 0.9, -0.3]
    return model


@pytest.mark.parametrize("edges", [False, True])
@pytest.mark.parametrize("grid", [4, 30])
def test_layer_backward_matches_autograd(edges, grid, monkeypatch):
    import kan_nb.bspline as bspline

    monkeypatch.setattr(bspline, "DENSE_MAX_SIZE", 0)  # grid 30 takes the local form
    model = symbolic_model(grid=grid)
    layer, p = model.layers[1], model.params[1]
    rng = np.random.default_rng(2)
    x0 = rng.uniform(-1.5, 1.5, (90, 3))
    w, w_e = rng.normal(size=(90, 2)), rng.normal(size=(90, 3, 2))

    def loss(p, x):
        if not edges:
            return anp.sum(anp.sin(layer_forward(layer, p, x)) * w)
        y, acts = layer_forward(layer, p, x, edges=True)
        return anp.sum(anp.sin(y) * w) + anp.sum(anp.cos(acts) * w_e)

    y, acts, tape = layer_value(layer, p, x0, edges=edges, cache=False)
    assert (tape["basis"].local) == (grid == 30)
    grads, g_x = layer_backward(layer, p, tape, np.cos(y) * w, -np.sin(acts) * w_e if edges else None)
    ref_p, ref_x = grad(loss, 0)(p, x0), grad(loss, 1)(p, x0)
    for key in p:
        np.testing.assert_allclose(grads[key], ref_p[key], atol=1e-12, err_msg=key)
    np.testing.assert_allclose(g_x, ref_x, atol=1e-12)


@pytest.fixture(scope="module")
def data():
    return create_dataset(lambda x: np.exp(np.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2), n_var=2, train_num=200, seed=0)


@pytest.mark.parametrize("lamb", [0.0, 0.1])
def test_hand_gradient_matches_autograd_and_differences(lamb, data, check_finite_differences):
    model = symbolic_model()
    x = data["train_input"]
    y = np.concatenate([data["train_label"], np.cos(data["train_label"])], axis=1)
    reg_args = dict(lamb_l1=1.0, lamb_entropy=2.0, lamb_coef=0.3, lamb_coefdiff=0.2)
    flat, unflatten = flatten(model.params)

    def objective(v):
        params = unflatten(v)
        pred, acts = model._forward(params, x, edges=True)
        return mse(pred, y) + (lamb * model.reg(params, acts, **reg_args) if lamb else 0.0)

    value, grads = _value_and_grad_mse(model, unflatten(flat), x, y, lamb, _reg_value_grad(model, reg_args))
    g = flatten(grads)[0]
    assert abs(value - objective(flat)) < 1e-13
    np.testing.assert_allclose(g, grad(objective)(flat), rtol=0, atol=1e-12)
    indices = np.random.default_rng(3).choice(len(flat), 40, replace=False)
    # fourth-order central differences, whose error is about 1e-11 here
    check_finite_differences(objective, flat, g, indices, h=1e-4, atol=1e-10, order=4)


def test_reg_value_grad_matches_autograd_on_dead_node():
    model = KAN([2, 3, 1], grid=3, seed=1)
    model.layers[0].mask[:, 2] = 0.0  # hidden node 2 is constant
    model.layers[1].mask[0, 0] = 0.0
    x = np.random.default_rng(0).uniform(-1, 1, (150, 2))
    _, acts = model._forward(model.params, x, edges=True)
    weights = (0.5, 3.0, 0.2, 0.7)
    value, g_params, g_acts = model.reg_value_grad(model.params, acts, *weights)
    ref_params, ref_acts = grad(lambda p, a: model.reg(p, a, *weights), argnum=(0, 1))(model.params, acts)
    assert abs(value - model.reg(model.params, acts, *weights)) < 1e-12
    for got, ref in zip(g_params + g_acts, ref_params + ref_acts):
        for key in ref:
            assert np.isfinite(got.get(key, 0.0)).all()
            np.testing.assert_allclose(got.get(key, 0.0), ref[key], atol=1e-12, err_msg=key)


def test_fit_fast_path_follows_autograd_path(data):
    "The first steps of fit with the hand-written gradient and with autograd's (a custom loss) agree closely"
    histories = []
    for loss_fn in (None, lambda pred, target: mse(pred, target)):
        model = KAN([2, 3, 1], grid=3, seed=0)
        histories.append(model.fit(data, steps=2, lamb=1e-3, loss_fn=loss_fn, update_grid=False))
    for key in ("train_loss", "test_loss", "reg"):
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-6, err_msg=key)


@pytest.mark.parametrize("lamb", [0.0, 1e-3])
def test_fit_is_bit_for_bit_repeatable(lamb, data):
    two = {key: np.concatenate([v, np.sin(v)], axis=1) if key.endswith("label") else v for key, v in data.items()}
    runs = []
    for _ in range(2):
        model = symbolic_model(seed=4)
        hist = model.fit(two, steps=6, lamb=lamb)
        runs.append((hist, [p[key].copy() for p in model.params for key in sorted(p)]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        assert np.array_equal(a, b)
