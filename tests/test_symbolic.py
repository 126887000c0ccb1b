"Symbolic fixing: the library, the affine fit, suggest/fix/auto_symbolic and the formula."

import numpy as np
import pytest
import sympy
from autograd import elementwise_grad

from kan_nb import KAN, create_dataset
from kan_nb.bspline import curve2coef
from kan_nb.symbolic import SYMBOLIC_LIB, _grid_r2, _layer_input, add_symbolic, ex_round, fit_params

LIB = ["x", "x^2", "x^3", "x^4", "exp", "log", "sqrt", "tanh", "sin", "abs"]


def paper_f(x):
    return np.exp(np.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2)


def relativistic_f(x):
    return (x[:, [0]] + x[:, [1]]) / (1 + x[:, [0]] * x[:, [1]])


def set_edge(model, l, i, j, f, x):
    "Make edge (l, i, j) a spline fit of f, with the base branch off"
    xl = _layer_input(model, x, l)
    layer, p = model.layers[l], model.params[l]
    values = np.zeros((len(x), layer.in_dim, layer.out_dim))
    values[:, i, j] = f(xl[:, i])
    p["coef"][i, j] = curve2coef(xl, values, layer.grid, layer.k)[i, j]
    p["scale_base"][i, j], p["scale_sp"][i, j] = 0.0, 1.0


def snapshot(model):
    return ([{k: v.copy() for k, v in p.items()} for p in model.params],
            [(layer.mask.copy(), layer.sym_mask.copy(), dict(layer.sym_fns)) for layer in model.layers])


def assert_same_state(model, state):
    params, layers = snapshot(model)
    for p, q in zip(params, state[0]):
        for k in p:
            np.testing.assert_array_equal(p[k], q[k])
    for (m, s, f), (m2, s2, f2) in zip(layers, state[1]):
        np.testing.assert_array_equal(m, m2)
        np.testing.assert_array_equal(s, s2)
        assert f == f2


@pytest.mark.parametrize("name", sorted(SYMBOLIC_LIB))
def test_library_entry_matches_sympy(name):
    entry = SYMBOLIC_LIB[name]
    z = np.linspace(-3, 3, 601)
    inside = z if entry.domain is None else z[entry.domain(z)]
    sym = sympy.Symbol("z")
    reference = np.broadcast_to(sympy.lambdify(sym, entry.sympy_fn(sym), "numpy")(inside), inside.shape)
    np.testing.assert_allclose(entry.fn(inside), reference, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Output seems independent of input")
@pytest.mark.parametrize("name", sorted(SYMBOLIC_LIB))
def test_safe_function_finite_across_poles(name):
    z = np.concatenate([np.linspace(-200, 200, 2001), [-1.0, 0.0, 1.0, np.pi / 2, 1e-300, -1e-300]])
    fn = SYMBOLIC_LIB[name].fn
    assert np.isfinite(fn(z)).all()
    assert np.isfinite(elementwise_grad(fn)(z)).all()


def test_pykan_complexities():
    expected = {"x": 1, "x^2": 2, "sin": 2, "cos": 2, "exp": 2, "log": 2, "sqrt": 2, "x^3": 3, "x^4": 3,
                "tanh": 3, "abs": 3, "tan": 3, "arcsin": 4, "arctan": 4, "arctanh": 4, "0": 0}
    assert {name: SYMBOLIC_LIB[name].complexity for name in expected} == expected


def test_fit_params_recovers_noisy_sine():
    x = np.linspace(-1, 1, 100)
    y = 5 * np.sin(3 * x + 2) + 0.7 + 0.02 * np.random.default_rng(0).normal(size=100)
    params, r2 = fit_params(x, y, "sin")
    np.testing.assert_allclose(params, [3, 2, 5, 0.7], atol=1e-2)
    assert r2 > 0.9999


def test_fit_params_uniform_samples_with_noise():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 100)
    y = 5 * np.sin(3 * x + 2) + 0.7 + 0.02 * rng.normal(size=100)
    params, _ = fit_params(x, y, "sin")
    assert np.round(params, 2).tolist() == pytest.approx([3.0, 2.0, 5.0, 0.7], abs=0.011)


def test_fit_params_excludes_nonfinite_samples():
    x = np.linspace(-1, 1, 100)
    y = 2 * np.exp(0.5 * x) - 1
    x_bad, y_bad = x.copy(), y.copy()
    x_bad[5], y_bad[[10, 20]] = np.nan, (np.inf, -np.inf)
    (a, b, c, d), r2 = fit_params(x_bad, y_bad, "exp")
    np.testing.assert_allclose(c * np.exp(a * x + b) + d, y, atol=1e-6)  # b and c trade off: compare the functions
    assert r2 > 1 - 1e-9


def test_fit_params_keeps_domain():
    x = np.linspace(-1, 1, 200)
    for name, target in [("log", np.log(x + 1.2)), ("sqrt", np.sqrt(x + 1.05)), ("arctanh", np.arctanh(0.8 * x))]:
        (a, b, c, d), r2 = fit_params(x, target, name)
        assert SYMBOLIC_LIB[name].domain(a * x + b).all(), name
        assert r2 > 1 - 1e-8, name


def test_fit_params_wrong_candidate_is_finite():
    x = np.linspace(-1, 1, 200)
    params, r2 = fit_params(x, np.sin(5 * x), "log")
    assert np.isfinite(params).all()
    assert 0 <= r2 < 0.99


def test_grid_r2_equals_plain_loop():
    rng = np.random.default_rng(0)
    u = np.linspace(-1, 1, 30)
    y = np.tanh(2 * u - 0.5) + 0.01 * rng.normal(size=30)
    a_values, b_values = np.linspace(-5, 5, 11), np.linspace(-3, 3, 7)
    def r2(f):
        return 0.0 if f.std() == 0 else np.corrcoef(f, y)[0, 1] ** 2

    loop = np.array([[r2(np.tanh(a * u + b)) for b in b_values] for a in a_values])
    np.testing.assert_allclose(_grid_r2(SYMBOLIC_LIB["tanh"], u, y, a_values, b_values), loop, atol=1e-12)


def test_fit_params_rejects_bad_input():
    x = np.linspace(-1, 1, 10)
    with pytest.raises(ValueError, match="'sinh' is not in the symbolic library"):
        fit_params(x, x, "sinh")
    with pytest.raises(ValueError, match="at least 3 samples"):
        fit_params([1.0, np.nan, 2.0], [1.0, 2.0, np.nan], "x")
    with pytest.raises(ValueError, match="a_range must be finite with low < high"):
        fit_params(x, x, "x", a_range=(1, -1))


def make_edge_model(f):
    model = KAN([1, 1], grid=20, seed=0)
    x = np.linspace(-1, 1, 400)[:, None]
    set_edge(model, 0, 0, 0, f, x)
    return model, x


def test_suggest_ranks_the_right_function_first():
    for f, name in [(lambda v: 0.3 * v**2 - 0.1, "x^2"), (lambda v: np.exp(1.5 * v), "exp"),
                    (lambda v: np.sin(np.pi * v), "sin"), (lambda v: 2 * v + 1, "x")]:
        model, x = make_edge_model(f)
        ranked = model.suggest_symbolic(0, 0, 0, lib=LIB, x=x)
        assert ranked[0].name == name
        assert [s.score for s in ranked] == sorted(s.score for s in ranked)


def test_fix_uses_explicit_data_not_last_forward():
    model, x = make_edge_model(lambda v: np.sin(np.pi * v))
    model.fit(dict(train_input=x, train_label=np.sin(np.pi * x), test_input=x, test_label=np.sin(np.pi * x)),
              steps=1)
    first = model.suggest_symbolic(0, 0, 0, lib=LIB)
    model(np.full((5, 1), 0.3))  # an unrelated forward pass must not change the samples of the fit
    second = model.suggest_symbolic(0, 0, 0, lib=LIB)
    assert [(s.name, s.r2) for s in first] == [(s.name, s.r2) for s in second]


def test_fix_then_unfix_restores_spline():
    model, x = make_edge_model(lambda v: np.exp(v))
    before = model(x)
    assert model.fix_symbolic(0, 0, 0, "exp", x=x) is model
    a, b, c, d = model.params[0]["affine"][0, 0]
    np.testing.assert_allclose(model(x), c * np.exp(a * x + b) + d, rtol=1e-14)
    assert model.unfix_symbolic(0, 0, 0) is model
    np.testing.assert_array_equal(model(x), before)


def test_bad_calls_leave_model_unchanged():
    model, x = make_edge_model(lambda v: v**2)
    state = snapshot(model)
    bad_calls = [
        (lambda: model.fix_symbolic(0, 0, 0, "nope", x=x), "'nope' is not in the symbolic library"),
        (lambda: model.fix_symbolic(1, 0, 0, "sin", x=x), "l must be a layer index in 0..0; got 1"),
        (lambda: model.fix_symbolic(0, 0, 3, "sin", x=x), "j must be an output node of layer 0"),
        (lambda: model.fix_symbolic(0, -1, 0, "sin", x=x), "i must be an integer >= 0"),
        (lambda: model.fix_symbolic(0, 0, 0, "sin"), "no training inputs are stored"),
        (lambda: model.fix_symbolic(0, 0, 0, "sin", x=x[:, 0]), "x must be a 2-D array"),
        (lambda: model.unfix_symbolic(0, 0, 0), "edge (0,0,0) is not symbolic"),
        (lambda: model.suggest_symbolic(0, 0, 0, lib=["x", "bogus"], x=x), "unknown: ['bogus']"),
        (lambda: model.auto_symbolic(lib=LIB, weight_simple=1.5, x=x), "weight_simple must lie in [0, 1]"),
        (lambda: model.auto_symbolic(lib=LIB), "no training inputs are stored"),
        (lambda: model.symbolic_formula(), "1 edges are still numeric: (0,0,0)"),
        (lambda: model.symbolic_formula(digits=-1, keep_numeric=True), "digits must be an integer >= 0"),
        (lambda: model.symbolic_formula(var=["a", "b"], keep_numeric=True), "var must be a list of 1 names"),
    ]
    for call, message in bad_calls:
        with pytest.raises(ValueError) as info:
            call()
        assert message in str(info.value)
        assert_same_state(model, state)


def test_pruned_edge_cannot_be_fixed():
    model, x = make_edge_model(lambda v: v)
    model.layers[0].mask[0, 0] = 0
    with pytest.raises(ValueError, match=r"edge \(0,0,0\) is pruned"):
        model.fix_symbolic(0, 0, 0, "x", x=x)
    model.auto_symbolic(lib=LIB, x=x)  # skips the pruned edge
    assert model.layers[0].sym_mask[0, 0] == 0
    assert model.symbolic_formula() == [0]


def test_formula_equals_network_after_auto_symbolic():
    model = KAN([3, 3, 2], grid=5, seed=4)  # this seed's edges use log, 1/x^2, sin, cos, exp, x and 0
    x = np.random.default_rng(4).uniform(-1, 1, (300, 3))
    model.auto_symbolic(x=x)
    np.testing.assert_allclose(model.symbolic_function()(x), model(x), rtol=0, atol=1e-10)


def test_placeholders_and_latex():
    model = KAN([2, 1], grid=5, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (100, 2))
    model.fix_symbolic(0, 0, 0, "sin", fit_params_bool=False)
    model.params[0]["affine"][0, 0] = (2.0, 0.0, 1.0, 0.0)
    assert str(model.symbolic_formula(keep_numeric=True, digits=3)[0]) == "phi_0,1,0(x_2) + sin(2*x_1)"
    model.fix_symbolic(0, 1, 0, "x", x=x)
    latex = model.symbolic_latex(var=["u", "v"])[0]
    assert r"\sin{\left(2 u \right)}" in latex
    assert "v" in latex


def test_ex_round_writes_whole_numbers_as_integers():
    x = sympy.Symbol("x")
    expr = sympy.Float(0.99999) * sympy.exp(sympy.Float(1.00001) * x) + sympy.Float(3e-6)
    assert ex_round(expr, 4) == sympy.exp(x)


def test_add_symbolic_custom_function():
    import autograd.numpy as anp
    add_symbolic("cube_root_plus", lambda z: anp.cbrt(z) + z, lambda z: sympy.cbrt(z) + z, 3)
    try:
        model, x = make_edge_model(lambda v: np.cbrt(v + 2) + v + 2)
        model.fix_symbolic(0, 0, 0, "cube_root_plus", x=x)
        np.testing.assert_allclose(model.symbolic_function()(x), model(x), atol=1e-10)
    finally:
        del SYMBOLIC_LIB["cube_root_plus"]
    with pytest.raises(ValueError, match="numpy_fn must return an array of the shape of its input"):
        add_symbolic("bad", lambda z: 1.0, sympy.sin, 2)


def test_wrong_candidate_trains_without_nan():
    f = lambda x: x[:, [0]] ** 2 + x[:, [1]]
    data = create_dataset(f, n_var=2, train_num=200, test_num=100, seed=0)
    model = KAN([2, 1], grid=5, seed=0)
    model.fit(data, steps=2)
    for name in ["log", "sqrt", "1/x", "arctanh"]:
        model.fix_symbolic(0, 0, 0, name, fit_params_bool=False)  # a·x + b = x crosses the domain boundary
        assert np.isfinite(model(data["train_input"])).all(), name
        history = model.fit(data, steps=3, update_grid=False)
        assert np.isfinite(history["train_loss"]).all(), name
        model.unfix_symbolic(0, 0, 0)


def test_relativistic_addition():
    data = create_dataset(relativistic_f, n_var=2, ranges=(-0.9, 0.9), seed=0)
    model = KAN([2, 1, 1], grid=10, seed=0)
    model.fit(data, steps=20)
    model.fix_symbolic(0, 0, 0, "arctanh").fix_symbolic(0, 1, 0, "arctanh").fix_symbolic(1, 0, 0, "tanh")
    history = model.fit(data, steps=20, update_grid=False)
    assert history["test_loss"][-1] <= 1e-9
    x_1, x_2 = sympy.symbols("x_1 x_2")
    assert model.symbolic_formula(digits=4) == [sympy.tanh(sympy.atanh(x_1) + sympy.atanh(x_2))]


def test_paper_example_on_211():
    data = create_dataset(paper_f, n_var=2, seed=0)
    model = KAN([2, 1, 1], grid=3, seed=0)
    model.fit(data, steps=20)
    model.auto_symbolic(lib=LIB)
    np.testing.assert_allclose(model.symbolic_function()(data["test_input"]), model(data["test_input"]),
                               rtol=0, atol=1e-10)
    history = model.fit(data, steps=20, update_grid=False)
    assert history["test_loss"][-1] <= 1e-8
    x_1, x_2 = sympy.symbols("x_1 x_2")
    assert model.symbolic_formula(digits=4) == [sympy.exp(x_2**2 + sympy.sin(sympy.Float(3.1416, 15) * x_1))]


@pytest.mark.parametrize("seed", range(10))
def test_hellokan_recipe_finds_the_formula(seed):
    "pykan 0.2.8's recipe: regularised fit, prune, fit, grid 10, fit, auto_symbolic, fit; every seed finds the formula"
    data = create_dataset(paper_f, n_var=2, seed=0)
    model = KAN([2, 5, 1], grid=3, k=3, seed=seed)
    model.fit(data, steps=50, lamb=1e-3)
    model.prune()
    assert model.width == [2, 1, 1]
    model.fit(data, steps=50)
    model.grid_extend(10)
    model.fit(data, steps=50)
    model.auto_symbolic(lib=LIB)
    history = model.fit(data, steps=50)
    assert history["test_loss"][-1] <= 1e-8
    x_1, x_2 = sympy.symbols("x_1 x_2")
    assert model.symbolic_formula(digits=4) == [sympy.exp(x_2**2 + sympy.sin(sympy.Float(3.1416, 15) * x_1))]
