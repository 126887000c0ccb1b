"Checks of `KAN.plot`: one curve per active edge, opacity tanh(beta*score), colours, names, sizes, errors."
import copy

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from kan_nb import KAN, create_dataset
from kan_nb.plotting import EDGE_COLORS, PLOT_MAX_HEIGHT, PLOT_MAX_WIDTH


def paper_f(x):
    return np.exp(np.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2)


def collection(fig, gid):
    return next(c for c in fig.axes[0].collections if c.get_gid() == gid)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def trained():
    data = create_dataset(paper_f, n_var=2, train_num=200, test_num=50, seed=0)
    model = KAN([2, 3, 1], grid=3, seed=0)
    model.fit(data, steps=3, lamb=1e-2)
    return model


def test_returns_figure_with_one_curve_per_edge(trained):
    fig = trained.plot(title="t")
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(collection(fig, "curves").get_segments()) == 2 * 3 + 3 * 1
    assert len(collection(fig, "frames").get_paths()) == 9
    assert len(collection(fig, "connections").get_segments()) == 18


def test_opacity_is_tanh_of_score(trained):
    beta = 5.0
    fig = trained.plot(beta=beta)
    scores = trained.attribute()["edge_scores"]
    expected = np.concatenate([np.tanh(beta * s.T.ravel()) for s in scores])
    np.testing.assert_allclose(collection(fig, "curves").get_colors()[:, 3], expected, rtol=0, atol=1e-12)


def test_masked_edges_not_drawn_and_symbolic_coloured(trained):
    model = copy.deepcopy(trained)
    model.layers[0].mask[1, 2] = 0.0
    model.layers[1].sym_fns[(0, 0)] = ("sin", np.sin)
    model.layers[1].sym_mask[0, 0] = 1.0
    model.layers[1].mask[0, 0] = 0.0
    model.layers[1].sym_fns[(1, 0)] = ("x", lambda v: v)
    model.layers[1].sym_mask[1, 0] = 1.0
    colors = collection(model.plot(), "curves").get_colors()
    assert len(colors) == 8
    rgb = [tuple(np.round(c[:3], 6)) for c in colors]
    assert rgb[-3] == tuple(np.round(to_rgba(EDGE_COLORS["symbolic"])[:3], 6))
    assert rgb[-2] == tuple(np.round(to_rgba(EDGE_COLORS["both"])[:3], 6))
    assert rgb[-1] == (0.0, 0.0, 0.0)


def test_variable_names(trained):
    fig = trained.plot(in_vars=["a", "$b$"], out_vars=["out"], title="T")
    assert [t.get_text() for t in fig.axes[0].texts] == ["a", "$b$", "out", "T"]
    default = [t.get_text() for t in trained.plot().axes[0].texts]
    assert default == ["$x_{1}$", "$x_{2}$", "$y_{1}$"]


def test_names_after_prune_input_keep_original_indices(trained):
    model = copy.deepcopy(trained)
    model.prune_input(active_inputs=[1])
    assert [t.get_text() for t in model.plot().axes[0].texts] == ["$x_{2}$", "$y_{1}$"]


@pytest.mark.parametrize("width", [[1, 1], [2, 5, 1], [4, 2, 1, 1], [8, 16, 16, 1]])
def test_sizes_stay_on_a_page(width):
    fig = KAN(width, grid=3, seed=0).plot(title=str(width))
    w, h = fig.get_size_inches()
    assert 2 <= w <= PLOT_MAX_WIDTH + 1
    assert 2 <= h <= PLOT_MAX_HEIGHT + 2
    frames = collection(fig, "frames").get_paths()
    boxes = np.array([[p.vertices[:, 0].min(), p.vertices[:, 1].min(), p.vertices[:, 0].max(), p.vertices[:, 1].max()]
                      for p in frames])
    assert (boxes[:, 2] - boxes[:, 0] >= 0.23).all()  # boxes at least 0.8 * 0.3 inch wide
    assert (boxes[:, :2] >= 0).all()
    assert (boxes[:, 2] <= w).all()
    assert (boxes[:, 3] <= h).all()
    order = np.lexsort((boxes[:, 0], boxes[:, 1]))
    b = boxes[order]
    same_row = np.isclose(b[1:, 1], b[:-1, 1])
    assert (b[1:, 0][same_row] >= b[:-1, 2][same_row] - 1e-9).all()  # boxes in a row do not overlap


def test_untrained_model_plots_without_touching_its_rng():
    model = KAN([2, 3, 1], grid=3, seed=0)
    state = model.rng.bit_generator.state
    model.plot()
    assert model.rng.bit_generator.state == state
    assert model.train_input is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(beta=-1), "beta must be >= 0.0; got -1"),
        (dict(beta=float("nan")), "beta must be a finite number"),
        (dict(in_vars=["x"]), "in_vars must be a list of 2 names"),
        (dict(out_vars=["a", "b"]), "out_vars must be a list of 1 names"),
    ],
)
def test_bad_arguments(trained, kwargs, message):
    with pytest.raises(ValueError) as err:
        trained.plot(**kwargs)
    assert message in str(err.value)
