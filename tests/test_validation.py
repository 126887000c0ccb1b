"Argument checks that leave the model unchanged, divergence handling, degenerate data and random state."
import random
import warnings

import autograd.numpy as anp
import numpy as np
import pytest

from kan_nb import KAN, create_dataset, create_kan
from kan_nb.network import OutsideGridWarning
from kan_nb.training import DivergenceError


def paper_f(x):
    return np.exp(np.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2)


@pytest.fixture(scope="module")
def data():
    return create_dataset(paper_f, n_var=2, train_num=200, test_num=100, seed=0)


def model_state(model):
    "Everything a failed call must leave as it was, as plain comparable values"
    return dict(
        width=list(model.width),
        grid=model.grid,
        rng=model.rng.bit_generator.state,
        train_input=None if model.train_input is None else model.train_input.copy(),
        grids=[layer.grid.copy() for layer in model.layers],
        masks=[(layer.mask.copy(), layer.sym_mask.copy()) for layer in model.layers],
        sym=[{key: name for key, (name, _) in layer.sym_fns.items()} for layer in model.layers],
        params=[{key: v.copy() for key, v in p.items()} for p in model.params],
    )


def assert_calls_leave_model_unchanged(model, calls):
    "Each (call, message): call(model) raises ValueError containing message, and the model is exactly as before"
    for call, message in calls:
        before = model_state(model)
        with pytest.raises(ValueError) as err:
            call(model)
        assert message in str(err.value), (message, str(err.value))
        assert_state_equal(model_state(model), before)


def assert_state_equal(a, b):
    assert a["width"] == b["width"]
    assert a["grid"] == b["grid"]
    assert a["rng"] == b["rng"]
    assert a["sym"] == b["sym"]
    if a["train_input"] is None:
        assert b["train_input"] is None
    else:
        np.testing.assert_array_equal(a["train_input"], b["train_input"])
    for x, y in zip(a["grids"], b["grids"]):
        np.testing.assert_array_equal(x, y)
    for (m1, s1), (m2, s2) in zip(a["masks"], b["masks"]):
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_array_equal(s1, s2)
    for p, q in zip(a["params"], b["params"]):
        assert p.keys() == q.keys()
        for key in p:
            np.testing.assert_array_equal(p[key], q[key])


# Constructors and datasets


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(width=[2]), "at least two layer sizes"),
        (dict(width="2,1"), "at least two layer sizes"),
        (dict(width=[2, 0, 1]), "positive integers"),
        (dict(width=[2, True]), "positive integers"),
        (dict(width=[2, 1], grid=0), "grid must be an integer >= 1; got 0"),
        (dict(width=[2, 1], grid=2.0), "grid must be an integer >= 1; got 2.0"),
        (dict(width=[2, 1], k=-1), "k must be an integer >= 1; got -1"),
        (dict(width=[2, 1], seed=-1), "seed must be an integer >= 0; got -1"),
        (dict(width=[2, 1], seed=None), "seed must be an integer >= 0; got None"),
        (dict(width=[2, 1], grid_range=(0, 0)), "low < high"),
        (dict(width=[2, 1], grid_range=(0, np.inf)), "low < high"),
        (dict(width=[2, 1], grid_range=5), "grid_range must be a pair"),
        (dict(width=[2, 1], grid=10, grid_range=(1e16, 1e16 + 4)), "knots coincide"),
        (dict(width=[2, 1], grid_eps=-0.1), "grid_eps must be >= 0"),
        (dict(width=[2, 1], grid_eps=1.5), "grid_eps must lie in [0, 1]"),
        (dict(width=[2, 1], noise_scale=-1), "noise_scale must be >= 0"),
        (dict(width=[2, 1], scale_base_mu=np.nan), "scale_base_mu must be a finite number"),
        (dict(width=[2, 1], scale_base_sigma=-1), "scale_base_sigma must be >= 0"),
    ],
)
def test_kan_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as err:
        KAN(**kwargs)
    assert message in str(err.value)
    with pytest.raises(ValueError) as err:
        create_kan(**kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(f=None), "f must be a function"),
        (dict(f=paper_f, n_var=0), "n_var must be an integer >= 1; got 0"),
        (dict(f=paper_f, f_mode="rows"), "f_mode must be 'col' or 'row'; got 'rows'"),
        (dict(f=paper_f, ranges=(1, 1)), "each with low < high"),
        (dict(f=paper_f, ranges=[(0, 1)] * 3), "one (low, high) pair or 2 of them"),
        (dict(f=paper_f, train_num=0), "train_num must be an integer >= 1; got 0"),
        (dict(f=paper_f, test_num=1.5), "test_num must be an integer >= 1; got 1.5"),
        (dict(f=paper_f, seed=-2), "seed must be an integer >= 0; got -2"),
        (dict(f=paper_f, normalize_input=1), "normalize_input must be True or False; got 1"),
        (dict(f=paper_f, normalize_label="no"), "normalize_label must be True or False"),
        (dict(f=lambda x: x[:3]), "must return an array of shape (1000, n_out)"),
        (dict(f=lambda x: np.full(len(x), np.nan)), "NaN or inf"),
        (dict(f=lambda x: [["a"]] * len(x)), "f must return numbers"),
    ],
)
def test_create_dataset_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as err:
        create_dataset(**kwargs)
    assert message in str(err.value)


def test_normalising_constant_column_centres_it():
    d = create_dataset(lambda x: x[:, :1] * 0 + 3.0, n_var=2, normalize_input=True, normalize_label=True, train_num=50)
    assert np.isfinite(d["train_label"]).all()
    np.testing.assert_array_equal(d["train_label"], 0.0)
    np.testing.assert_allclose(d["train_input"].std(0), 1.0, rtol=1e-12)


# Methods: a failed call leaves the model exactly as it was


def bad_fit_calls(data):
    return [
        (lambda m: m.fit(data, opt="sgd"), "opt must be 'LBFGS' or 'Adam'; got 'sgd'"),
        (lambda m: m.fit(data, steps=2.5), "steps must be an integer >= 0; got 2.5"),
        (lambda m: m.fit(data, log=-1), "log must be an integer >= 0; got -1"),
        (lambda m: m.fit(data, lamb=np.inf), "lamb must be a finite number; got inf"),
        (lambda m: m.fit(data, lamb_l1=-1), "lamb_l1 must be >= 0"),
        (lambda m: m.fit(data, lamb_entropy=-1), "lamb_entropy must be >= 0"),
        (lambda m: m.fit(data, lamb_coef=-1), "lamb_coef must be >= 0"),
        (lambda m: m.fit(data, lamb_coefdiff=-1), "lamb_coefdiff must be >= 0"),
        (lambda m: m.fit(data, update_grid=None), "update_grid must be True or False; got None"),
        (lambda m: m.fit(data, grid_update_num=0), "grid_update_num must be an integer >= 1; got 0"),
        (lambda m: m.fit(data, lr=0), "lr must be > 0; got 0"),
        (lambda m: m.fit(data, start_grid_update_step=-2), "start_grid_update_step must be an integer >= -1"),
        (lambda m: m.fit(data, stop_grid_update_step=-1), "stop_grid_update_step must be an integer >= 0"),
        (lambda m: m.fit(data, batch=0), "batch must be an integer >= 1; got 0"),
        (lambda m: m.fit(data, loss_fn="mse"), "loss_fn must be a function"),
        (lambda m: m.fit(data, loss_fn=lambda p, y: p - y), "loss_fn must return a scalar; got an array of shape (200, 1)"),
        (lambda m: m.fit(data, progress="yes"), "progress must be True or False"),
        (lambda m: m.fit([1, 2]), "dataset must be a dict"),
        (lambda m: m.fit({"train_input": data["train_input"]}), "dataset is missing train_label"),
        (lambda m: m.fit({**data, "train_input": data["train_input"][:, :1]}), "has 1 columns but the model expects 2"),
        (lambda m: m.fit({**data, "train_label": data["train_label"][:5]}), "200 train_input rows but 5 train_label rows"),
        (lambda m: m.fit({**data, "test_input": np.full((100, 2), np.inf)}), "non-finite values"),
        (lambda m: m.update_grid_from_samples(np.zeros(4)), "reshape(-1, 2)"),
        (lambda m: m.update_grid_from_samples(data["train_input"], grid_eps=1.1), "grid_eps must lie in [0, 1]; got 1.1"),
        (lambda m: m.update_grid_from_samples(data["train_input"], grid_eps="a"), "grid_eps must be a finite number"),
        (lambda m: m(np.zeros((3, 3))), "3 columns but the model expects 2"),
        (lambda m: m(np.zeros((0, 2))), "empty"),
        (lambda m: m([["a", "b"]]), "numeric array"),
        (lambda m: m.save(5), "path must be a file path"),
    ]


def test_failed_calls_leave_model_unchanged(data):
    model = KAN([2, 3, 1], grid=5, seed=0)
    model.fit(data, steps=2)
    for call, message in bad_fit_calls(data):
        before = model_state(model)
        with pytest.raises(ValueError) as err:
            call(model)
        assert message in str(err.value), (message, str(err.value))
        assert_state_equal(model_state(model), before)


def test_failed_symbolic_calls_leave_model_unchanged(data):
    model = KAN([2, 3, 1], grid=5, seed=0)
    model.fit(data, steps=2)
    calls = [
        (lambda m: m.fix_symbolic(2, 0, 0, "sin"), "l must be"),
        (lambda m: m.fix_symbolic(0, 5, 0, "sin"), "i must be"),
        (lambda m: m.fix_symbolic(0, 0, -1, "sin"), "j must be"),
        (lambda m: m.fix_symbolic(0, 0, 0, "sinh"), "'sinh' is not in the symbolic library"),
        (lambda m: m.unfix_symbolic(0, 0, 0), "is not symbolic"),
    ]
    assert_calls_leave_model_unchanged(model, calls)


def test_update_grid_is_all_or_nothing(data, monkeypatch):
    import kan_nb.training as training

    model = KAN([2, 3, 1], grid=5, seed=0)
    model.fit(data, steps=2, update_grid=False)
    before = model_state(model)
    calls = []
    real = training.curve2coef

    def fail_on_second_layer(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise np.linalg.LinAlgError("simulated failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "curve2coef", fail_on_second_layer)
    with pytest.raises(np.linalg.LinAlgError):
        model.update_grid_from_samples(data["train_input"])
    assert_state_equal(model_state(model), before)


# Divergence


def test_divergence_names_step_restores_and_keeps_history(data):
    model = KAN([2, 3, 1], grid=5, seed=0)
    with pytest.raises(DivergenceError) as err:
        model.fit(data, opt="Adam", lr=1e150, steps=8)
    e = err.value
    assert isinstance(e, FloatingPointError)
    assert e.step >= 1
    assert f"training stopped at step {e.step}" in str(e)
    assert "layer" in e.location
    assert len(e.history["train_loss"]) == e.step - 1
    reference = KAN([2, 3, 1], grid=5, seed=0)
    reference.fit(data, opt="Adam", lr=1e150, steps=e.step - 1)
    assert_state_equal(model_state(model), model_state(reference))
    assert np.isfinite(model(data["test_input"])).all()


def test_divergence_names_symbolic_edge_at_step_one(data):
    model = KAN([2, 3, 1], grid=5, seed=0)
    model.layers[1].sym_mask[1, 0] = 1.0
    model.layers[1].sym_fns[(1, 0)] = ("log", anp.log)
    before = model_state(model)
    with pytest.raises(DivergenceError) as err:
        model.fit(data, steps=3)
    assert "at step 1: the activation of edge (1, 1, 0)" in str(err.value)
    assert "from before this fit were restored" in str(err.value)
    assert_state_equal(model_state(model), {**before, "train_input": data["train_input"]})


def test_divergence_names_non_finite_gradient(data):
    model = KAN([2, 3, 1], grid=5, seed=0)
    # a finite loss whose gradient is NaN: the slope of sqrt at 0 is infinite, and inf * 0 is NaN
    loss = lambda pred, target: anp.mean((pred - target) ** 2) + anp.sqrt(anp.abs(pred[0, 0] - pred[0, 0]))
    with pytest.raises(DivergenceError, match="at step 1: the gradient of the loss with respect to 'coef' of layer 0"):
        model.fit(data, steps=2, loss_fn=loss)


def test_divergence_names_loss_function(data):
    model = KAN([2, 3, 1], grid=5, seed=0)
    with pytest.raises(DivergenceError, match="at step 1: the loss, computed from finite network outputs,"):
        model.fit(data, steps=2, loss_fn=lambda pred, target: anp.mean(anp.log(pred - target)))


def test_divergence_names_regulariser(data, monkeypatch):
    model = KAN([2, 3, 1], grid=5, seed=0)
    monkeypatch.setattr(KAN, "reg", lambda self, params, acts, **kwargs: anp.sum(params[0]["coef"]) * np.nan, raising=False)
    with pytest.raises(DivergenceError, match="at step 1: the regularisation term is not finite"):
        model.fit(data, steps=2, lamb=1e-3)


def test_divergence_from_huge_inputs_is_reported(data):
    huge = {**data, "train_input": data["train_input"] * 1e200, "test_input": data["test_input"] * 1e200}
    model = KAN([2, 3, 1], grid=5, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings are replaced by the error
        with pytest.raises(DivergenceError, match="training stopped at step 1"):
            model.fit(huge, steps=2)


# Degenerate data


def with_column(data, column, train_values, test_values=None):
    d = {key: v.copy() for key, v in data.items()}
    d["train_input"][:, column] = train_values
    d["test_input"][:, column] = train_values if test_values is None else test_values
    return d


def fit_quietly(model, dataset, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(dataset, **kwargs)
    return history, [str(w.message) for w in caught]


def test_constant_column_keeps_knots_and_coefficients(data):
    const = with_column(data, 1, 0.3)
    model = KAN([2, 3, 1], grid=5, seed=0)
    grid, coef = model.layers[0].grid[1].copy(), model.params[0]["coef"][1].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.update_grid_from_samples(const["train_input"])
    np.testing.assert_array_equal(model.layers[0].grid[1], grid)
    np.testing.assert_array_equal(model.params[0]["coef"][1], coef)
    history, messages = fit_quietly(model, const, steps=4)
    assert np.isfinite(history["train_loss"]).all()


@pytest.mark.parametrize("low, high", [(1.0, 1 + 1e-11), (1.0, 1 + 1e-13), (-5e7, -5e7 + 1e-4)])
def test_nearly_constant_column_keeps_knots_with_warning(data, low, high):
    narrow = with_column(data, 1, np.where(np.arange(200) % 2, high, low), low)
    model = KAN([2, 3, 1], grid=5, seed=0)
    grid = model.layers[0].grid[1].copy()
    history, messages = fit_quietly(model, narrow, steps=3)
    assert np.isfinite(history["train_loss"]).all()
    np.testing.assert_array_equal(model.layers[0].grid[1], grid)
    assert any("vary too little for distinct knots" in m for m in messages)


def test_tiny_but_relatively_wide_column_gets_knots(data):
    tiny = with_column(data, 1, 1e-300 * data["train_input"][:, 1], 1e-300 * data["test_input"][:, 1])
    model = KAN([2, 3, 1], grid=5, seed=0)
    history, messages = fit_quietly(model, tiny, steps=3)
    assert np.isfinite(history["train_loss"]).all()
    assert np.abs(model.layers[0].grid[1]).max() < 1e-299
    assert (np.diff(model.layers[0].grid[1]) > 0).all()


@pytest.mark.parametrize("grid_eps", [0.0, 0.02, 1.0])
def test_duplicated_samples_keep_knots_increasing(data, grid_eps):
    dup = {key: np.repeat(v[:6], 30, axis=0) for key, v in data.items()}
    model = KAN([2, 3, 1], grid=10, seed=0, grid_eps=grid_eps)
    history, messages = fit_quietly(model, dup, steps=3)
    assert np.isfinite(history["train_loss"]).all()
    for layer in model.layers:
        assert (np.diff(layer.grid, axis=1) > 0).all()
    assert any("6 values, 13 coefficients" in m for m in messages)


def test_fewer_samples_than_coefficients_keeps_values_at_samples(data):
    model = KAN([2, 3, 1], grid=10, seed=0)
    model.fit(data, steps=3, update_grid=False)
    x = data["train_input"][:4]
    before = model(x)
    with pytest.warns(UserWarning, match="fewer distinct sample values than the G \\+ k"):
        model.update_grid_from_samples(x)
    np.testing.assert_allclose(model(x), before, rtol=0, atol=1e-12)


def test_single_sample_dataset_trains(data):
    single = {key: v[:1] for key, v in data.items()}
    model = KAN([2, 3, 1], grid=5, seed=0)
    history, _ = fit_quietly(model, single, steps=2)
    assert np.isfinite(history["train_loss"]).all()


def test_far_inputs_warn_and_use_base_branch():
    model = KAN([1, 1], grid=5, seed=0)
    far = np.array([[10.0], [-7.0]])
    with pytest.warns(OutsideGridWarning, match="2 of the 2 input values lie beyond the extended grid"):
        y = model(far)
    p = model.params[0]
    base = p["scale_base"][0, 0] * far * 0.5 * (1 + np.tanh(0.5 * far))
    np.testing.assert_allclose(y, base, rtol=1e-14)


def test_inputs_in_extension_cells_do_not_warn():
    model = KAN([2, 3, 1], grid=5, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(np.array([[2.19, -2.19], [0.0, 0.0]]))


def test_grid_update_reaches_shifted_inputs(data):
    shifted = {key: (v + 3.0 if key.endswith("input") else v) for key, v in data.items()}
    model = KAN([2, 3, 1], grid=5, seed=0)
    model.fit(shifted, steps=1)
    assert model.layers[0].grid[:, 3].max() > 1.5  # first un-extended knot moved to the data near 2..4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(shifted["test_input"])


# Random state


def test_no_global_random_state_is_touched(data, tmp_path):
    np_state = np.random.get_state()[1].copy()
    py_state = random.getstate()
    model = KAN([2, 3, 1], grid=5, seed=0)
    create_dataset(paper_f, n_var=2, train_num=50, test_num=10, seed=3)
    model.fit(data, steps=2)
    model.fit(data, steps=2, opt="Adam", lr=0.01, batch=32)
    model.fit(data, steps=2, batch=50)
    model.update_grid_from_samples(data["train_input"])
    model(data["test_input"])
    KAN.load(model.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state


@pytest.mark.parametrize("kwargs", [dict(), dict(opt="Adam", lr=0.01, batch=40), dict(batch=50)])
def test_same_seed_gives_identical_histories(data, kwargs):
    runs = []
    for _ in range(2):
        model = KAN([2, 3, 1], grid=5, seed=7)
        history = model.fit(data, steps=6, **kwargs)
        runs.append((history, model))
    (h1, m1), (h2, m2) = runs
    for key in ("train_loss", "test_loss", "reg"):
        np.testing.assert_array_equal(h1[key], h2[key])  # unlike ==, this treats NaN as equal to NaN
    assert_state_equal(model_state(m1), model_state(m2))


# B-spline functions


from autograd import grad, hessian  # noqa: E402

from kan_nb.bspline import (  # noqa: E402
    B_batch, B_batch_deriv, SplineBasis, coef2curve, curve2coef, extend_grid, spline_edges, spline_sum, uniform_grid)
from kan_nb.layer import KANLayer, init_layer, layer_forward, layer_value, numeric_branch  # noqa: E402


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((2, 0, 3), {}, "G must be an integer >= 1; got 0"),
        ((2, -3, 3), {}, "G must be an integer >= 1; got -3"),
        ((2, 2.5, 3), {}, "G must be an integer >= 1; got 2.5"),
        ((2, 4, -1), {}, "k must be an integer >= 0; got -1"),
        ((2, 4, 1.0), {}, "k must be an integer >= 0; got 1.0"),
        ((0, 4, 3), {}, "in_dim must be an integer >= 1; got 0"),
        ((2, 4, 3), dict(grid_range=(1, -1)), "grid_range must be finite with low < high; got (1, -1)"),
        ((2, 4, 3), dict(grid_range=(0.5, 0.5)), "grid_range must be finite with low < high"),
        ((2, 4, 3), dict(grid_range=(np.nan, 1)), "grid_range must be finite with low < high"),
        ((2, 4, 3), dict(grid_range=(-np.inf, 1)), "grid_range must be finite with low < high"),
        ((2, 4, 3), dict(grid_range=(-1e308, 1e308)), "the extended knots overflow float64"),
        ((2, 4, 3), dict(grid_range=[1]), "grid_range must be a pair (low, high)"),
        ((2, 10, 3), dict(grid_range=(1e16, 1e16 + 4)), "neighbouring knots coincide"),
    ],
)
def test_uniform_grid_rejects_bad_arguments(args, kwargs, message):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning on the way to the error
        with pytest.raises(ValueError) as err:
            uniform_grid(*args, **kwargs)
    assert message in str(err.value)


GRID = uniform_grid(2, 4, 3)  # (2, 11)
X = np.random.default_rng(0).uniform(-1, 1, (20, 2))
COEF = np.random.default_rng(1).normal(size=(2, 3, 7))
Y = np.random.default_rng(2).normal(size=(20, 2, 3))
REVERSED = GRID[:, ::-1]
REPEATED = np.concatenate([GRID[:, :5], GRID[:, 4:-1]], axis=1)  # knot 4 twice, same shape


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: extend_grid(np.linspace(-1, 1, 5), 3), "got shape (5,). Use grid.reshape(1, -1)"),
        (lambda: extend_grid(np.zeros((2, 1)), 3), "a grid needs at least 2 knots per row"),
        (lambda: extend_grid(np.array([[1.0, 0.0, -1.0]]), 3), "strictly increasing along each row; row 0"),
        (lambda: extend_grid(np.array([[0.0, 0.0, 1.0]]), 3), "at positions 0 and 1"),
        (lambda: extend_grid(np.array([[0.0, np.nan, 1.0]]), 3), "grid contains NaN or inf"),
        (lambda: extend_grid(GRID[:, 3:-3], -1), "k must be an integer >= 0; got -1"),
        (lambda: extend_grid([["a", "b"]], 1), "grid must be a numeric array"),
        (lambda: B_batch(X[:, 0], GRID, 3), "x must be a 2-D array of shape (batch, in_dim); got shape (20,)"),
        (lambda: B_batch(X[:, :1], GRID, 3), "x has 1 columns but grid has 2 rows"),
        (lambda: B_batch(X, GRID[0], 3), "grid must be a 2-D array of knots"),
        (lambda: B_batch(X, REVERSED, 3), "grid must be strictly increasing along each row; row 0"),
        (lambda: B_batch(X, REPEATED, 3), "at positions 4 and 5"),
        (lambda: B_batch(X, np.where(GRID > 1, np.inf, GRID), 3), "grid contains NaN or inf"),
        (lambda: B_batch(X, GRID, 5), "an extended grid for k=5 has G+2k+1 >= 12 knots per row"),
        (lambda: B_batch(X, GRID, "3"), "k must be an integer >= 0; got '3'"),
        (lambda: B_batch_deriv(X, GRID, 0), "k must be an integer >= 1; got 0"),
        (lambda: B_batch_deriv(X[:, 0], GRID, 3), "got shape (20,)"),
        (lambda: B_batch_deriv(X, REVERSED, 3), "strictly increasing"),
        (lambda: coef2curve(X[:, 0], GRID, COEF, 3), "got shape (20,)"),
        (lambda: coef2curve(X[:, :1], GRID, COEF, 3), "x has 1 columns but grid has 2 rows"),
        (lambda: coef2curve(X, REPEATED, COEF, 3), "strictly increasing"),
        (lambda: coef2curve(X, GRID, COEF[:, :, 1:], 3), "coef must have shape (in_dim, out_dim, G+k) = (2, out_dim, 7)"),
        (lambda: coef2curve(X, GRID, COEF[:1], 3), "got shape (1, 3, 7)"),
        (lambda: coef2curve(X, GRID, COEF[0], 3), "got shape (3, 7)"),
        (lambda: curve2coef(X[:, 0], Y, GRID, 3), "got shape (20,)"),
        (lambda: curve2coef(X[:, :1], Y, GRID, 3), "x has 1 columns but grid has 2 rows"),
        (lambda: curve2coef(X, Y, REVERSED, 3), "strictly increasing"),
        (lambda: curve2coef(X, Y[:, 0], GRID, 3), "y must have shape (batch, in_dim, out_dim) = (20, 2, out_dim)"),
        (lambda: curve2coef(X, Y[:5], GRID, 3), "got shape (5, 2, 3)"),
        (lambda: curve2coef(X, Y[:, :1], GRID, 3), "got shape (20, 1, 3)"),
        (lambda: curve2coef(X, Y, GRID, 3, lamb=-1e-3), "lamb is the weight of a ridge term and must be >= 0; got -0.001"),
        (lambda: curve2coef(X, Y, GRID, 3, lamb=np.nan), "lamb must be a finite number; got nan"),
        (lambda: curve2coef(X, Y, GRID, 3, lamb="0"), "lamb must be a finite number; got '0'"),
        (lambda: curve2coef(X, np.where(Y > 1, np.nan, Y), GRID, 3), "y contains NaN or inf"),
        (lambda: curve2coef(np.where(X > 0.9, np.inf, X), Y, GRID, 3), "x contains NaN or inf"),
        (lambda: curve2coef(X[:0], Y[:0], GRID, 3), "x has no samples"),
        (lambda: SplineBasis(X[:, 0], GRID, 3), "got shape (20,)"),
        (lambda: SplineBasis(X[:, :1], GRID, 3), "x has 1 columns but grid has 2 rows"),
        (lambda: SplineBasis(X, GRID, -1), "k must be an integer >= 0; got -1"),
        (lambda: SplineBasis(X, GRID, 3, local="yes"), "local must be None, True or False"),
    ],
)
def test_spline_functions_reject_bad_arguments(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value), str(err.value)


def test_negative_ridge_would_break_the_fit():
    # why a negative lamb is rejected: it can make the normal equations singular, here exactly
    x = np.linspace(-1, 1, 50)[:, None]
    grid = uniform_grid(1, 3, 1)
    B = B_batch(x, grid, 1)[:, 0]
    lamb = -np.linalg.eigvalsh(B.T @ B)[0]
    with pytest.raises(ValueError, match="must be >= 0"):
        curve2coef(x, np.sin(x)[:, :, None], grid, 1, lamb=lamb)


def test_spline_checks_accept_valid_input_unchanged():
    # lists and integer arrays are accepted, and results equal those of float arrays
    np.testing.assert_array_equal(B_batch(X.tolist(), GRID.tolist(), 3), B_batch(X, GRID, 3))
    np.testing.assert_array_equal(extend_grid(np.array([[0, 1, 2]]), 1), [[-1.0, 0.0, 1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(uniform_grid(np.int64(2), np.int32(4), np.int64(3)), GRID)
    coef = curve2coef(X, Y, GRID, 3, lamb=0)
    assert coef.shape == (2, 3, 7)


# Layers


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(in_dim=0), "in_dim must be an integer >= 1; got 0"),
        (dict(out_dim=0), "out_dim must be an integer >= 1; got 0"),
        (dict(out_dim=-2), "out_dim must be an integer >= 1; got -2"),
        (dict(in_dim=2.0), "in_dim must be an integer >= 1; got 2.0"),
        (dict(G=0), "G must be an integer >= 1; got 0"),
        (dict(k=-1), "k must be an integer >= 0; got -1"),
        (dict(grid_range=(2, 1)), "grid_range must be finite with low < high"),
        (dict(noise_scale=-1), "noise_scale must be >= 0"),
        (dict(noise_scale=np.nan), "noise_scale must be a finite number"),
        (dict(scale_base_mu=np.inf), "scale_base_mu must be a finite number"),
        (dict(scale_base_sigma=-1), "scale_base_sigma must be >= 0"),
        (dict(scale_sp="1"), "scale_sp must be a finite number"),
        (dict(rng=42), "rng must be a numpy Generator"),
    ],
)
def test_init_layer_rejects_bad_arguments_without_drawing(kwargs, message):
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    with pytest.raises(ValueError) as err:
        init_layer(**{"in_dim": 2, "out_dim": 3, "rng": rng, **kwargs})
    assert message in str(err.value)
    assert rng.bit_generator.state == state


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, 3, GRID[:0], 3), "in_dim must be an integer >= 1; got 0"),
        ((2, 0, GRID, 3), "out_dim must be an integer >= 1; got 0"),
        ((3, 1, GRID, 3), "grid has 2 rows but the layer has in_dim=3 inputs"),
        ((2, 1, GRID[0], 3), "grid must be a 2-D array"),
        ((2, 1, REVERSED, 3), "strictly increasing"),
        ((2, 1, GRID, 5), "k=5 has G+2k+1 >= 12 knots per row"),
        ((2, 1, GRID, None), "k must be an integer >= 0; got None"),
    ],
)
def test_kan_layer_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError) as err:
        KANLayer(*args)
    assert message in str(err.value)


def test_layer_forward_rejects_bad_inputs():
    layer, p = init_layer(2, 3)
    for call, message in [
        (lambda: layer_forward(layer, p, X[:, 0]), "x must have shape (batch, 2) for a layer with 2 inputs; got shape (20,)"),
        (lambda: layer_forward(layer, p, np.zeros((5, 3))), "got shape (5, 3)"),
        (lambda: layer_forward(layer, p, X, edges=None), "edges must be True or False; got None"),
        (lambda: layer_forward(layer, p, X, local="dense"), "local must be None, True or False"),
        (lambda: layer_value(layer, p, X[:, :1]), "got shape (20, 1)"),
    ]:
        with pytest.raises(ValueError) as err:
            call()
        assert message in str(err.value)


# Second derivatives through the hand-written gradients


def spline_setup(local):
    rng = np.random.default_rng(3)
    grid = uniform_grid(2, 12, 3)  # 15 bases: local=None would choose either form by size
    x = rng.uniform(-1, 1, (30, 2))
    C = rng.normal(size=(2 * 15, 3))
    return x, C, SplineBasis(x, grid, 3, local=local)


@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize("primitive, name", [(spline_sum, "spline_sum"), (spline_edges, "spline_edges")])
def test_second_derivative_of_spline_primitive_raises(local, primitive, name):
    x, C, basis = spline_setup(local)
    loss = lambda x, C: anp.sum(anp.sin(primitive(x, C, basis)))
    grad(loss, 0)(x, C)  # first derivatives work
    grad(loss, 1)(x, C)
    message = f"second derivatives through {name} are not supported"
    with pytest.raises(NotImplementedError, match=message):
        grad(lambda x: anp.sum(grad(loss, 0)(x, C)))(x)
    with pytest.raises(NotImplementedError, match=message):
        hessian(loss, 1)(x, C)  # the gradient for C does not depend on C, but the cotangent does
    with pytest.raises(NotImplementedError, match=message):
        grad(lambda C: anp.sum(grad(loss, 0)(x, C) ** 2))(C)  # mixed: d/dC of d/dx


def test_second_derivative_through_layer_and_network_raises():
    layer, p = init_layer(2, 3, G=5)
    loss = lambda x: anp.sum(anp.sin(layer_forward(layer, p, x)))
    with pytest.raises(NotImplementedError, match="second derivatives through numeric_branch are not supported"):
        grad(lambda x: anp.sum(grad(loss)(x)))(X)
    model = KAN([2, 3, 1], grid=5, seed=0)
    u = lambda params, x: anp.sum(model._forward(params, x))
    with pytest.raises(NotImplementedError, match="evaluate the splines with B_batch or coef2curve"):
        grad(lambda params: anp.sum(grad(u, 1)(params, X) ** 2))(model.params)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        hessian(lambda x: u(model.params, x))(X)


def test_second_derivative_of_numeric_branch_raises_for_parameters():
    layer, p = init_layer(2, 3, G=5)
    basis = SplineBasis(X, layer.grid, 3)
    loss = lambda coef: anp.sum(anp.sin(numeric_branch(X, coef, p["scale_base"], p["scale_sp"], layer.mask, basis)))
    with pytest.raises(NotImplementedError, match="second derivatives through numeric_branch"):
        hessian(loss)(p["coef"])


# Non-finite symbolic edges stay on their edge


def raw_sqrt(z):
    return anp.sqrt(z)  # NaN for z < 0, unlike the library's guarded sqrt


def nan_edge_layer(local):
    layer, p = init_layer(3, 4, G=12 if local else 5, rng=np.random.default_rng(0))
    layer.mask[1, 0] = layer.mask[2, 2] = 0  # (1, 0) becomes symbolic, (2, 2) is switched off
    layer.sym_mask[1, 0] = layer.sym_mask[0, 3] = 1  # (0, 3) is symbolic on top of its spline
    layer.sym_fns[(1, 0)] = ("raw sqrt", raw_sqrt)
    layer.sym_fns[(0, 3)] = ("sin", anp.sin)
    return layer, p


@pytest.mark.parametrize("local", [False, True])
def test_nan_symbolic_edge_stays_on_its_edge(local):
    layer, p = nan_edge_layer(local)
    x = np.random.default_rng(1).uniform(-1, 1, (100, 3))
    bad = x[:, 1] < 0  # raw_sqrt(a x + b) with (a, b) = (1, 0)
    assert bad.any()
    assert not bad.all()
    expected = np.zeros((100, 3, 4), dtype=bool)
    expected[bad, 1, 0] = True
    with np.errstate(invalid="ignore"):
        y, acts = layer_forward(layer, p, x, edges=True, local=local)
        y_sum = layer_forward(layer, p, x, local=local)
        for edges in (False, True):
            y_value, acts_value, _ = layer_value(layer, p, x, edges=edges, cache=False)
            np.testing.assert_array_equal(~np.isfinite(y_value), expected.any(1))
            if edges:
                np.testing.assert_array_equal(~np.isfinite(acts_value), expected)
    np.testing.assert_array_equal(~np.isfinite(acts), expected)
    np.testing.assert_array_equal(~np.isfinite(y), expected.any(1))
    np.testing.assert_array_equal(~np.isfinite(y_sum), expected.any(1))
    # the finite outputs equal those of the same layer with a finite function on the edge
    layer.sym_fns[(1, 0)] = ("abs sqrt", lambda z: anp.sqrt(anp.abs(z)))
    y_ok, acts_ok = layer_forward(layer, p, x, edges=True, local=local)
    np.testing.assert_allclose(acts[~expected], acts_ok[~expected], rtol=0, atol=1e-14)
    np.testing.assert_allclose(y[:, 1:], y_ok[:, 1:], rtol=0, atol=1e-14)


@pytest.mark.parametrize("local", [False, True])
def test_non_finite_input_skips_switched_off_edges(local):
    layer, p = nan_edge_layer(local)
    x = np.random.default_rng(1).uniform(0.1, 1, (60, 3))
    x[::4, 2] = np.nan
    x[1::4, 2] = np.inf
    x[2::4, 2] = -np.inf
    bad = ~np.isfinite(x[:, 2])
    with np.errstate(invalid="ignore"):
        y, acts = layer_forward(layer, p, x, edges=True, local=local)
        y_sum = layer_forward(layer, p, x, local=local)
        y_value = layer_value(layer, p, x, cache=False)[0]
    np.testing.assert_array_equal(acts[:, 2, 2], 0.0)  # switched off, although its input is NaN or inf
    for j in (0, 1, 3):  # numeric edges from input 2
        np.testing.assert_array_equal(~np.isfinite(acts[:, 2, j]), bad)
    assert np.isfinite(acts[:, :2]).all()
    np.testing.assert_array_equal(np.isfinite(acts).all(1), np.isfinite(y))
    for out in (y, y_sum, y_value):
        np.testing.assert_array_equal(np.isfinite(out[:, 2]), np.ones(60, dtype=bool))


def test_nan_edge_reaches_only_dependent_network_outputs():
    model = KAN([2, 2, 2], grid=5, seed=0)
    model.layers[0].mask[0, 1] = 0
    model.layers[0].sym_mask[0, 1] = 1
    model.layers[0].sym_fns[(0, 1)] = ("raw sqrt", raw_sqrt)  # hidden node 1 is NaN where x_0 < 0
    model.layers[1].mask[1, 0] = 0  # output 0 does not use hidden node 1
    x = np.random.default_rng(2).uniform(-1, 1, (80, 2))
    with np.errstate(invalid="ignore"):
        y = model(x)
        _, acts = model._forward(model.params, x, edges=True)
    bad = x[:, 0] < 0
    assert np.isfinite(y[:, 0]).all()
    np.testing.assert_array_equal(~np.isfinite(y[:, 1]), bad)
    np.testing.assert_array_equal((~np.isfinite(acts[0]["edges"])).any(0), [[False, True], [False, False]])
    np.testing.assert_array_equal((~np.isfinite(acts[1]["edges"])).any(0), [[False, False], [False, True]])


def test_symbolic_placement_matches_one_hot_product():
    # with finite values the symbolic edges add the same numbers as a one-hot product of their values
    layer, p = nan_edge_layer(False)
    layer.sym_fns[(1, 0)] = ("sin", anp.sin)
    layer.sym_mask[2, 0] = layer.sym_mask[0, 0] = 1
    layer.sym_fns[(2, 0)] = layer.sym_fns[(0, 0)] = ("x^2", lambda z: z * z)
    x = np.random.default_rng(3).uniform(-1, 1, (40, 3))
    y, acts = layer_forward(layer, p, x, edges=True)
    numeric = layer_forward(layer, {**p, "affine": p["affine"] * [1, 1, 0, 0]}, x, edges=True)[1]
    from kan_nb.layer import symbolic_values
    (ii, jj, v), = symbolic_values(layer, p, x)
    expected = numeric + (v @ np.eye(12)[ii * 4 + jj]).reshape(40, 3, 4)
    np.testing.assert_allclose(acts, expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(layer_forward(layer, p, x), numeric.sum(1) + v @ np.eye(4)[jj], rtol=0, atol=1e-13)
    loss = lambda p: anp.sum(anp.sin(layer_forward(layer, p, x)))
    g = grad(loss)(p)
    h = 1e-6
    q, r = ({**p, "affine": p["affine"].copy()} for _ in range(2))
    q["affine"][2, 0, 2] += h
    r["affine"][2, 0, 2] -= h
    np.testing.assert_allclose(g["affine"][2, 0, 2], (loss(q) - loss(r)) / (2 * h), rtol=0, atol=1e-7)


# Symbolic methods


def test_failed_symbolic_argument_checks_leave_model_unchanged(data):
    model = KAN([2, 3, 1], grid=5, seed=0)
    model.fit(data, steps=2)
    model.fix_symbolic(1, 0, 0, "x")
    x = data["train_input"]
    calls = [
        (lambda m: m.fix_symbolic(0, 0, 0, np.sin), "name must be the name of a library function"),
        (lambda m: m.fix_symbolic(0, 0, 0, "sin", fit_params_bool="no"), "fit_params_bool must be True or False"),
        (lambda m: m.fix_symbolic(0, 0, 0, "sin", verbose=1), "verbose must be True or False; got 1"),
        (lambda m: m.fix_symbolic(0, 0, 0, "sin", x=x[:2]), "at least 3 samples"),
        (lambda m: m.auto_symbolic(r2_threshold=2), "r2_threshold must lie in [0, 1], the range of r2; got 2"),
        (lambda m: m.auto_symbolic(r2_threshold=1.0000001), "r2_threshold must lie in [0, 1]"),
        (lambda m: m.auto_symbolic(r2_threshold=-0.5), "r2_threshold must lie in [0, 1]"),
        (lambda m: m.auto_symbolic(r2_threshold=np.nan), "r2_threshold must be a finite number; got nan"),
        (lambda m: m.auto_symbolic(weight_simple=1.5), "weight_simple must lie in [0, 1]; got 1.5"),
        (lambda m: m.auto_symbolic(weight_simple=-0.1), "weight_simple must be >= 0"),
        (lambda m: m.auto_symbolic(weight_simple=np.nan), "weight_simple must be a finite number"),
        (lambda m: m.auto_symbolic(verbose="yes"), "verbose must be True or False"),
        (lambda m: m.auto_symbolic(lib=[]), "lib must be a non-empty list"),
        (lambda m: m.auto_symbolic(x=x[:, :1]), "1 columns but the model expects 2"),
        (lambda m: m.suggest_symbolic(0, 0, 0, weight_simple=2), "weight_simple must lie in [0, 1]; got 2"),
        (lambda m: m.suggest_symbolic(0, 0, 0, topk=0), "topk must be an integer >= 1; got 0"),
        (lambda m: m.suggest_symbolic(0, 0, 3), "j must be an output node of layer 0"),
        (lambda m: m.suggest_symbolic(True, 0, 0), "l must be an integer >= 0; got True"),
        (lambda m: m.unfix_symbolic(1, 1, 0), "edge (1,1,0) is not symbolic"),
    ]
    assert_calls_leave_model_unchanged(model, calls)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.symbolic_latex(var=5), "var must be a list of 2 names or SymPy symbols, one per input; got 5"),
        (lambda m: m.symbolic_formula(var=5), "var must be a list of 2 names"),
        (lambda m: m.symbolic_formula(var="ab"), "var must be a list of 2 names"),
        (lambda m: m.symbolic_formula(var=["a", 1]), "var must contain names such as 'x' or SymPy symbols; got 1"),
        (lambda m: m.symbolic_formula(var=["a", ""]), "got ''"),
        (lambda m: m.symbolic_formula(var=["a", "a"]), "2 different names"),
        (lambda m: m.symbolic_formula(digits=-1), "digits must be an integer >= 0; got -1"),
        (lambda m: m.symbolic_formula(simplify=None), "simplify must be True or False; got None"),
        (lambda m: m.symbolic_formula(keep_numeric="no"), "keep_numeric must be True or False"),
        (lambda m: m.symbolic_latex(digits=1.5), "digits must be an integer >= 0; got 1.5"),
        (lambda m: m.symbolic_function(digits="2"), "digits must be an integer >= 0"),
    ],
)
def test_symbolic_formula_rejects_bad_arguments(call, message):
    model = KAN([2, 1], grid=5, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    model.auto_symbolic(lib=["x", "sin"], x=x)
    with pytest.raises(ValueError) as err:
        call(model)
    assert message in str(err.value)


def test_fit_params_and_ex_round_reject_bad_arguments():
    from kan_nb.symbolic import ex_round, fit_params

    x = np.linspace(-1, 1, 30)
    with pytest.raises(ValueError, match="x must be a 1-D array of samples of one edge"):
        fit_params(np.stack([x, x], 1), np.concatenate([x, x]), "sin")
    with pytest.raises(ValueError, match="y must be a numeric array"):
        fit_params(x, ["a"] * 30, "sin")
    fit_params(x[:, None], np.sin(x), "sin")  # a single column is fine
    with pytest.raises(ValueError, match="expr must be a SymPy expression; got str"):
        ex_round("x + 1", 2)


def test_auto_symbolic_is_all_or_nothing(data, monkeypatch):
    import kan_nb.symbolic as symbolic

    model = KAN([2, 3, 1], grid=5, seed=0)
    model.fit(data, steps=2)
    model.fix_symbolic(0, 1, 2, "sin")
    before = model_state(model)
    real = symbolic._rank
    calls = []

    def fail_on_fifth_edge(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # not an Exception: the rollback must catch it too
        return real(*args)

    monkeypatch.setattr(symbolic, "_rank", fail_on_fifth_edge)
    with pytest.raises(KeyboardInterrupt):
        model.auto_symbolic(lib=["x", "x^2", "sin"])
    assert len(calls) == 5
    assert_state_equal(model_state(model), before)
    monkeypatch.setattr(symbolic, "_rank", real)
    model.auto_symbolic(lib=["x", "x^2", "sin"])  # and it still works afterwards
    assert not any(layer.mask.any() for layer in model.layers)


def test_spline_primitives_reject_wrong_coefficient_shape():
    x, C, basis = spline_setup(False)
    for primitive in (spline_sum, spline_edges):
        with pytest.raises(ValueError, match=r"C must have shape \(in_dim\*\(G\+k\), out_dim\) = \(30, out_dim\)"):
            primitive(x, C[:-1], basis)
        with pytest.raises(ValueError, match=r"got shape \(90,\)"):
            primitive(x, C.ravel(), basis)


def test_gather_columns_equals_one_hot_product():
    from kan_nb.layer import _gather_columns, _sum_columns

    rng = np.random.default_rng(4)
    v = rng.normal(size=(30, 6))
    for targets, n_targets in [([0, 0, 0, 0, 0, 0], 1), ([4, 1, 4, 0, 4, 1], 6), ([5, 4, 3, 2, 1, 0], 6)]:
        targets = np.array(targets)
        one_hot = np.eye(n_targets)[targets]
        np.testing.assert_allclose(_gather_columns(v, targets, n_targets), v @ one_hot, rtol=0, atol=1e-14)
        weights = rng.normal(size=(30, n_targets))
        gather_grad = grad(lambda v: anp.sum(anp.sin(_gather_columns(v, targets, n_targets)) * weights))(v)
        product_grad = grad(lambda v: anp.sum(anp.sin(v @ one_hot) * weights))(v)
        np.testing.assert_allclose(gather_grad, product_grad, rtol=0, atol=1e-14)
    targets = np.array([4, 1, 4, 0, 4, 1])
    v[7, 2] = np.inf
    result = _sum_columns(v, targets, 6)
    np.testing.assert_array_equal(np.argwhere(~np.isfinite(result)), [[7, 4]])
    np.testing.assert_array_equal(result[:, [2, 3, 5]], 0.0)  # no value targets these columns
