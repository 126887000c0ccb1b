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
    for call, message in calls:
        before = model_state(model)
        with pytest.raises(ValueError) as err:
            call(model)
        assert message in str(err.value), (message, str(err.value))
        assert_state_equal(model_state(model), before)


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
