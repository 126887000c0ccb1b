"Property tests (hypothesis): basis identities, grid updates, the vectorised forward pass and save/load."
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.interpolate import BSpline

from kan_nb import KAN
from kan_nb.bspline import B_batch, SplineBasis, coef2curve, curve2coef, extend_grid
from kan_nb.layer import silu
from kan_nb.symbolic import SYMBOLIC_LIB

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.integers(0, 2**32 - 1)


def random_grid(rng, in_dim, G, k, lo=-1.0, hi=1.0):
    "Extended grid whose G intervals on [lo, hi] vary in width by up to a factor 5"
    widths = rng.uniform(1.0, 5.0, (in_dim, G))
    inner = lo + (hi - lo) * np.cumsum(widths, axis=1) / widths.sum(1, keepdims=True)
    base = np.concatenate([np.full((in_dim, 1), lo), inner], axis=1)
    base[:, -1] = hi
    return extend_grid(base, k)


# The basis


@FAST
@given(G=st.integers(1, 20), k=st.integers(1, 5), seed=SEEDS)
def test_partition_of_unity_on_random_grids(G, k, seed):
    rng = np.random.default_rng(seed)
    grid = random_grid(rng, 2, G, k)
    x = np.concatenate([rng.uniform(-1, 1, (60, 2)), [[-1.0, 1.0], [1.0, -1.0]]])  # end points included
    np.testing.assert_allclose(B_batch(x, grid, k).sum(-1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(SplineBasis(x, grid, k, local=True).dense().sum(-1), 1.0, rtol=0, atol=1e-12)


@FAST
@given(G=st.integers(1, 15), k=st.integers(1, 4), out_dim=st.integers(1, 3), seed=SEEDS)
def test_curve2coef_inverts_coef2curve(G, k, out_dim, seed):
    rng = np.random.default_rng(seed)
    grid = random_grid(rng, 2, G, k)
    # k + 2 samples strictly inside every interval satisfy the Schoenberg-Whitney condition, so the fit is unique
    inner = grid[:, k:G + k + 1]
    fractions = np.linspace(0, 1, k + 4)[1:-1]
    x = (inner[:, :-1, None] + np.diff(inner, axis=1)[:, :, None] * fractions).reshape(2, -1).T  # (G*(k+2), 2)
    coef = rng.normal(size=(2, out_dim, G + k))
    recovered = curve2coef(x, coef2curve(x, grid, coef, k), grid, k)
    np.testing.assert_allclose(recovered, coef, rtol=0, atol=1e-8)


# Grid updates


def set_polynomial_edges(model, rng):
    "Make every edge spline of a one-layer model a random polynomial of degree <= k on [-1, 1]"
    layer, k = model.layers[0], model.k
    xs = np.linspace(-1, 1, 8 * (layer.G + k))[:, None].repeat(layer.in_dim, 1)
    powers = xs[..., None] ** np.arange(k + 1)  # (batch, in_dim, k+1)
    values = np.einsum("ijd,bid->bij", rng.normal(size=(layer.in_dim, layer.out_dim, k + 1)), powers)
    model.params[0]["coef"] = curve2coef(xs, values, layer.grid, k)


@FAST
@given(
    n_in=st.integers(1, 3),
    n_out=st.integers(1, 3),
    G=st.integers(2, 12),
    k=st.integers(1, 4),
    grid_eps=st.floats(0, 1),
    n=st.integers(30, 200),
    seed=SEEDS,
)
def test_grid_update_keeps_functions_the_new_grid_represents(n_in, n_out, G, k, grid_eps, n, seed):
    rng = np.random.default_rng(seed)
    model = KAN([n_in, n_out], grid=G, k=k, seed=0)
    set_polynomial_edges(model, rng)
    x = rng.uniform(-1, 1, (n, n_in)) * rng.uniform(0.2, 1, n_in)
    before = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few distinct samples for large G is expected here
        model.update_grid_from_samples(x, grid_eps=grid_eps)
    scale = max(1.0, np.abs(before).max())
    np.testing.assert_allclose(model(x), before, rtol=0, atol=1e-9 * scale)


@st.composite
def awkward_samples(draw):
    """(n, 2) samples whose columns are arbitrary floats, or centre + spread * (small integers).

    The second kind gives repeated values and spreads down to float64 resolution at magnitudes from 1e-300 to 1e6.
    """
    n = draw(st.integers(1, 40))
    columns = []
    for _ in range(2):
        if draw(st.integers(0, 2)) == 0:
            columns.append(draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False), min_size=n, max_size=n)))
        else:
            centre = draw(st.sampled_from([0.0, 1.0, -3.5, 7e5, 1e-300]))
            spread = draw(st.sampled_from([0.0, 2e-16, 1e-12, 1e-11, 3e-11, 1e-9, 1e-3, 1.0]))
            steps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
            columns.append([centre + spread * step for step in steps])
    return np.array(columns).T


grid_eps_values = st.one_of(st.sampled_from([0.0, 0.02, 1.0]), st.floats(0, 1))


@settings(max_examples=80, deadline=None)
@given(x=awkward_samples(), G=st.integers(1, 12), grid_eps=grid_eps_values, seed=SEEDS)
def test_grid_update_on_any_data_gives_valid_knots(x, G, grid_eps, seed):
    model = KAN([2, 3, 1], grid=G, k=3, seed=seed % 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.update_grid_from_samples(x, grid_eps=grid_eps)
        y = model._forward(model.params, x)
    for layer in model.layers:
        assert np.isfinite(layer.grid).all()
        assert (np.diff(layer.grid, axis=1) > 0).all()
    for p in model.params:
        assert np.isfinite(p["coef"]).all()
    assert np.isfinite(y).all()


@settings(max_examples=10, deadline=None)
@given(G=st.integers(3, 6), factor=st.integers(2, 3), seed=st.integers(0, 50))
def test_grid_extension_keeps_function(G, factor, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (300, 2))
    y = np.sin(np.pi * x[:, :1]) + x[:, 1:] ** 2
    data = dict(train_input=x, train_label=y, test_input=x[:50], test_label=y[:50])
    model = KAN([2, 2, 1], grid=G, seed=seed)
    model.fit(data, steps=3)
    before = model(x)
    model.grid_extend(G * factor)
    rel = np.sqrt(np.mean((model(x) - before) ** 2) / np.mean(before**2))
    assert rel <= 1e-3


@settings(max_examples=10, deadline=None)
@given(hidden=st.integers(3, 5), n_dead=st.integers(1, 2), seed=st.integers(0, 50))
def test_pruning_dead_nodes_keeps_output_exactly(hidden, n_dead, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (200, 2))
    model = KAN([2, hidden, 1], grid=5, seed=seed)
    model.train_input = x
    for p in model.params:
        p["scale_base"] = np.sign(p["scale_base"]) + p["scale_base"]  # every live edge clearly above the thresholds
    dead = rng.choice(hidden, n_dead, replace=False)
    model.layers[0].mask[:, dead] = 0.0
    model.layers[1].mask[dead, :] = 0.0
    before = model(x)
    model.prune(node_th=1e-2, edge_th=0.0)
    assert model.width == [2, hidden - n_dead, 1]
    np.testing.assert_allclose(model(x), before, rtol=0, atol=1e-12)


# The forward pass


def edge_loop_forward(model, x):
    "Network output by a Python loop over edges, with every basis function evaluated by scipy"
    for layer, p in zip(model.layers, model.params):
        out = np.zeros((x.shape[0], layer.out_dim))
        t, k = layer.grid, layer.k
        for i in range(layer.in_dim):
            # each basis from its own k+2 knots; scipy returns nan outside its support, where it is zero
            bases = [np.nan_to_num(BSpline.basis_element(t[i, c:c + k + 2], extrapolate=False)(x[:, i]))
                     for c in range(t.shape[1] - k - 1)]
            for j in range(layer.out_dim):
                if layer.mask[i, j]:
                    spline = np.dot(p["coef"][i, j], bases)
                    out[:, j] += p["scale_base"][i, j] * silu(x[:, i]) + p["scale_sp"][i, j] * spline
                if layer.sym_mask[i, j]:
                    a, b, c, d = p["affine"][i, j]
                    out[:, j] += c * layer.sym_fns[(i, j)][1](a * x[:, i] + b) + d
        x = out
    return x


def random_model(draw_seed, width, G, k, n_symbolic):
    "A model with random coefficients, some pruned edges and some symbolic edges"
    rng = np.random.default_rng(draw_seed)
    model = KAN(width, grid=G, k=k, seed=draw_seed % 1000)
    names = ["sin", "x^2", "tanh", "exp", "arctan"]
    for layer, p in zip(model.layers, model.params):
        p["coef"] = rng.normal(size=p["coef"].shape) * 0.5
        p["affine"] = rng.normal(size=p["affine"].shape) * 0.5
        layer.mask = (rng.random(layer.mask.shape) > 0.2).astype(float)
        for _ in range(n_symbolic):
            i, j = rng.integers(layer.in_dim), rng.integers(layer.out_dim)
            name = names[rng.integers(len(names))]
            layer.sym_fns[(int(i), int(j))] = (name, SYMBOLIC_LIB[name].fn)
            layer.sym_mask[i, j] = 1.0
    return model, rng


widths = st.lists(st.integers(1, 4), min_size=2, max_size=4)


@FAST
@given(width=widths, G=st.integers(1, 14), k=st.integers(1, 4), n_symbolic=st.integers(0, 2), seed=SEEDS)
def test_vectorised_forward_equals_edge_loop(width, G, k, n_symbolic, seed):
    model, rng = random_model(seed, width, G, k, n_symbolic)
    x = rng.uniform(-1.5, 1.5, (40, width[0]))  # partly in the extension cells
    y = model._forward(model.params, x)
    reference = edge_loop_forward(model, x)
    np.testing.assert_allclose(y, reference, rtol=1e-10, atol=1e-10 * max(1.0, np.abs(reference).max()))


# Save and load


@FAST
@given(width=widths, G=st.integers(1, 14), k=st.integers(1, 4), n_symbolic=st.integers(0, 2),
       with_data=st.booleans(), seed=SEEDS)
def test_save_load_round_trip(width, G, k, n_symbolic, with_data, seed):
    model, rng = random_model(seed, width, G, k, n_symbolic)
    model.rng.random(int(rng.integers(0, 50)))  # an advanced generator state
    if with_data:
        model.train_input = rng.uniform(-1, 1, (int(rng.integers(1, 30)), width[0]))
    x = rng.uniform(-1.5, 1.5, (20, width[0]))
    with tempfile.TemporaryDirectory() as folder:
        loaded = KAN.load(model.save(Path(folder) / "m.npz"))
    assert loaded.width == model.width
    assert loaded.rng.bit_generator.state == model.rng.bit_generator.state
    assert np.array_equal(loaded._forward(loaded.params, x), model._forward(model.params, x))
    for a, b in zip(model.layers, loaded.layers):
        assert np.array_equal(a.grid, b.grid)
        assert np.array_equal(a.mask, b.mask)
        assert np.array_equal(a.sym_mask, b.sym_mask)
        assert {key: name for key, (name, _) in a.sym_fns.items()} == {key: name for key, (name, _) in b.sym_fns.items()}
    for p, q in zip(model.params, loaded.params):
        for key in p:
            assert np.array_equal(p[key], q[key])
    if with_data:
        assert np.array_equal(loaded.train_input, model.train_input)
    else:
        assert loaded.train_input is None
