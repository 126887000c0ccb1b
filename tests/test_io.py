"Save and load: bit-identical round trips, resumed training, atomic writes and damaged files."
import json
import os
import pickle
import stat

import autograd.numpy as anp
import numpy as np
import pytest
import sympy

import kan_nb.io
from kan_nb import KAN, create_dataset
from kan_nb.io import FORMAT_VERSION
from kan_nb.symbolic import SYMBOLIC_LIB, add_symbolic


def paper_f(x):
    return np.exp(np.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2)


@pytest.fixture(scope="module")
def data():
    return create_dataset(paper_f, n_var=2, train_num=200, test_num=100, seed=0)


@pytest.fixture(scope="module")
def trained(data):
    model = KAN([2, 3, 1], grid=5, seed=1)
    model.fit(data, steps=4)
    return model


def assert_same_model(a, b):
    assert a.width == b.width
    assert (a.grid, a.k, a.seed, a.grid_range, a.grid_eps, a.grid_margin) == (b.grid, b.k, b.seed, b.grid_range, b.grid_eps, b.grid_margin)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.grid, lb.grid)
        np.testing.assert_array_equal(la.mask, lb.mask)
        np.testing.assert_array_equal(la.sym_mask, lb.sym_mask)
        assert {key: name for key, (name, _) in la.sym_fns.items()} == {key: name for key, (name, _) in lb.sym_fns.items()}
    for pa, pb in zip(a.params, b.params):
        assert pa.keys() == pb.keys()
        for key in pa:
            assert pa[key].dtype == pb[key].dtype
            np.testing.assert_array_equal(pa[key], pb[key])
    if a.train_input is None:
        assert b.train_input is None
    else:
        np.testing.assert_array_equal(a.train_input, b.train_input)


def test_round_trip_is_bit_identical(trained, data, tmp_path):
    path = trained.save(tmp_path / "m.npz")
    loaded = KAN.load(path)
    assert_same_model(trained, loaded)
    x = data["test_input"]
    assert np.array_equal(loaded(x), trained(x))


def test_round_trip_of_unfitted_model(tmp_path):
    model = KAN([3, 4, 2, 1], grid=7, k=2, seed=5, grid_range=(-2, 3), grid_eps=0.5)
    loaded = KAN.load(model.save(tmp_path / "m.npz"))
    assert loaded.train_input is None
    assert_same_model(model, loaded)


def test_save_accepts_str_and_returns_path(trained, tmp_path):
    result = trained.save(str(tmp_path / "m.npz"))
    assert result == tmp_path / "m.npz"
    assert_same_model(trained, KAN.load(str(result)))


@pytest.mark.parametrize("opt, kwargs", [("LBFGS", {}), ("Adam", dict(lr=0.01, batch=50)), ("LBFGS", dict(batch=60))])
def test_loaded_model_continues_training_identically(trained, data, tmp_path, opt, kwargs):
    original = KAN.load(trained.save(tmp_path / "start.npz"))  # an independent copy to train
    resumed = KAN.load(tmp_path / "start.npz")
    h1 = original.fit(data, opt=opt, steps=6, **kwargs)
    h2 = resumed.fit(data, opt=opt, steps=6, **kwargs)
    assert h1["train_loss"] == h2["train_loss"]
    assert h1["test_loss"] == h2["test_loss"]
    assert_same_model(original, resumed)


def test_rng_state_is_restored(tmp_path):
    model = KAN([2, 2, 1], seed=3)
    model.rng.random(17)  # advance the generator past its seeded state
    loaded = KAN.load(model.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.rng.random(5), model.rng.random(5))


def test_other_bit_generator_round_trips(tmp_path):
    model = KAN([2, 1], seed=0)
    model.rng = np.random.Generator(np.random.MT19937(7))
    loaded = KAN.load(model.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.rng.integers(0, 1000, 10), model.rng.integers(0, 1000, 10))


def test_masked_model_round_trips(trained, data, tmp_path):
    model = KAN.load(trained.save(tmp_path / "a.npz"))
    model.layers[0].mask[1, 2] = 0.0
    model.layers[1].mask[0, 0] = 0.0
    loaded = KAN.load(model.save(tmp_path / "b.npz"))
    assert_same_model(model, loaded)
    assert np.array_equal(loaded(data["test_input"]), model(data["test_input"]))


def test_pruned_model_round_trips(data, tmp_path):
    model = KAN([2, 5, 1], grid=5, seed=0)
    model.fit(data, steps=10, lamb=1e-2)
    model.prune()
    assert model.width[1] < 5
    loaded = KAN.load(model.save(tmp_path / "pruned.npz"))
    assert loaded.width == model.width
    assert_same_model(model, loaded)
    assert np.array_equal(loaded(data["test_input"]), model(data["test_input"]))


def test_grid_extended_model_round_trips(data, tmp_path):
    model = KAN([2, 3, 1], grid=3, seed=0)
    model.fit(data, steps=3)
    model.grid_extend(8)
    loaded = KAN.load(model.save(tmp_path / "extended.npz"))
    assert_same_model(model, loaded)
    assert np.array_equal(loaded(data["test_input"]), model(data["test_input"]))


@pytest.fixture
def softsign():
    add_symbolic("softsign_test", lambda z: z / (1 + anp.abs(z)), lambda z: z / (1 + sympy.Abs(z)), 3)
    yield SYMBOLIC_LIB["softsign_test"]
    SYMBOLIC_LIB.pop("softsign_test", None)


def test_symbolic_model_round_trips(trained, data, tmp_path, softsign):
    model = KAN.load(trained.save(tmp_path / "a.npz"))
    model.fix_symbolic(0, 1, 0, "sin")
    model.fix_symbolic(1, 2, 0, "softsign_test")
    loaded = KAN.load(model.save(tmp_path / "sym.npz"))
    assert_same_model(model, loaded)
    assert loaded.layers[1].sym_fns[(2, 0)][1] is softsign.fn
    assert np.array_equal(loaded(data["test_input"]), model(data["test_input"]))
    h1 = model.fit(data, steps=3)
    h2 = loaded.fit(data, steps=3)
    assert h1["train_loss"] == h2["train_loss"]


def test_load_rejects_unregistered_symbolic_name(trained, tmp_path, softsign):
    model = KAN.load(trained.save(tmp_path / "a.npz"))
    model.fix_symbolic(1, 2, 0, "softsign_test")
    model.save(tmp_path / "sym.npz")
    entry = SYMBOLIC_LIB.pop("softsign_test")
    with pytest.raises(ValueError, match=r"edge \(1, 2, 0\) uses the symbolic function 'softsign_test', which is not registered"):
        KAN.load(tmp_path / "sym.npz")
    SYMBOLIC_LIB["softsign_test"] = entry
    KAN.load(tmp_path / "sym.npz")


def test_load_rejects_changed_symbolic_function(trained, tmp_path, softsign):
    model = KAN.load(trained.save(tmp_path / "a.npz"))
    model.fix_symbolic(1, 2, 0, "softsign_test")
    model.save(tmp_path / "sym.npz")
    add_symbolic("softsign_test", lambda z: z / (2 + anp.abs(z)), lambda z: z / (2 + sympy.Abs(z)), 3)
    with pytest.raises(ValueError, match="'softsign_test' registered in this process differs from the one saved"):
        KAN.load(tmp_path / "sym.npz")


def test_save_rejects_function_outside_library(trained, tmp_path):
    model = KAN.load(trained.save(tmp_path / "a.npz"))
    model.layers[1].sym_fns[(0, 0)] = ("mine", anp.sinh)
    model.layers[1].sym_mask[0, 0] = 1.0
    with pytest.raises(ValueError, match=r"edge \(1, 0, 0\) uses a function named 'mine'"):
        model.save(tmp_path / "b.npz")
    assert not (tmp_path / "b.npz").exists()


def test_save_rejects_nan_keeps_old_file(trained, data, tmp_path):
    path = trained.save(tmp_path / "m.npz")
    before = path.read_bytes()
    broken = KAN.load(path)
    broken.params[1]["scale_sp"][0, 0] = np.inf
    with pytest.raises(ValueError, match="layer 1: 'scale_sp' contains NaN or inf"):
        broken.save(path)
    assert path.read_bytes() == before


def test_failed_write_keeps_old_file(trained, tmp_path, monkeypatch):
    path = trained.save(tmp_path / "m.npz")
    before = path.read_bytes()

    def write_half_then_fail(f, **arrays):
        f.write(b"PK\x03\x04 partial archive")
        raise OSError("disk full")

    monkeypatch.setattr(kan_nb.io.np, "savez", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        trained.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_save_keeps_permissions_of_replaced_file(trained, tmp_path):
    path = trained.save(tmp_path / "m.npz")
    os.chmod(path, 0o640)
    trained.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_new_file_mode_follows_umask(trained, tmp_path):
    old = os.umask(0o027)
    try:
        path = trained.save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_save_rejects_what_load_would_reject(trained, tmp_path):
    model = KAN.load(trained.save(tmp_path / "a.npz"))
    model.params[0]["node_scale"] = np.ones(2)
    with pytest.raises(ValueError, match="layer 0: save does not know the parameters node_scale"):
        model.save(tmp_path / "b.npz")
    del model.params[0]["node_scale"]
    model.layers[1].grid = model.layers[1].grid[:, ::-1].copy()
    with pytest.raises(ValueError, match="layer 1: the knots are not strictly increasing"):
        model.save(tmp_path / "b.npz")
    model = KAN.load(tmp_path / "a.npz")
    model.train_input = np.full((3, 2), np.nan)
    with pytest.raises(ValueError, match="train_input contains 6 non-finite values"):
        model.save(tmp_path / "b.npz")
    assert not (tmp_path / "b.npz").exists()


def test_save_rejects_bad_paths(trained, tmp_path):
    with pytest.raises(ValueError, match="path must be a file path"):
        trained.save(3)
    with pytest.raises(ValueError, match="is a folder"):
        trained.save(tmp_path)
    with pytest.raises(ValueError, match="does not exist; create it"):
        trained.save(tmp_path / "missing" / "m.npz")


def test_save_warns_about_unsaved_attributes(trained, tmp_path):
    model = KAN.load(trained.save(tmp_path / "a.npz"))
    model.notes = "fitted on Monday"
    with pytest.warns(UserWarning, match="does not store the attributes notes"):
        model.save(tmp_path / "b.npz")


def test_saved_attributes_cover_a_new_model():
    # input_id exists only after prune_input, so a new model has every other saved attribute
    assert set(vars(KAN([2, 1]))) == kan_nb.io.SAVED_ATTRS - {"input_id"}


def test_load_never_unpickles(trained, tmp_path, monkeypatch):
    path = trained.save(tmp_path / "m.npz")

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    KAN.load(path)
    np.savez(tmp_path / "object.npz", config=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a readable kan_nb model file"):
        KAN.load(tmp_path / "object.npz")


# Damaged and foreign files


def rewrite(src, dst, config_change=None, drop=None, add=None, replace=None):
    with np.load(src, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name != drop}
    if "config" in arrays:
        config = json.loads(arrays["config"].tobytes())
        for key, value in (config_change or {}).items():
            if value is None:
                config.pop(key)
            else:
                config[key] = value
        arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    arrays.update(add or {})
    arrays.update(replace or {})
    np.savez(dst, **arrays)
    return dst


@pytest.fixture
def saved(trained, tmp_path):
    return trained.save(tmp_path / "m.npz")


def test_truncated_files_raise_value_error(saved, tmp_path):
    raw = saved.read_bytes()
    bad = tmp_path / "bad.npz"
    for n in list(range(0, 64)) + list(np.linspace(64, len(raw) - 1, 60).astype(int)):
        bad.write_bytes(raw[:n])
        with pytest.raises(ValueError, match="not a kan_nb model file|not a readable kan_nb model file"):
            KAN.load(bad)


def test_flipped_bytes_raise_value_error_or_load_intact(trained, saved, tmp_path):
    raw = saved.read_bytes()
    bad = tmp_path / "bad.npz"
    positions = np.random.default_rng(0).choice(len(raw), 150, replace=False)
    loaded_intact = 0
    for pos in positions:
        flipped = bytearray(raw)
        flipped[pos] ^= 0xA5
        bad.write_bytes(bytes(flipped))
        try:
            model = KAN.load(bad)
        except ValueError:
            continue
        assert_same_model(trained, model)  # a flip in zip metadata that nothing reads
        loaded_intact += 1
    assert loaded_intact < len(positions) // 2


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(config_change=dict(format_version=FORMAT_VERSION + 1)), f"uses format version {FORMAT_VERSION + 1}"),
        (dict(config_change=dict(format_version="1")), "format_version must be a positive integer"),
        (dict(config_change=dict(format="other")), "not a kan_nb model file"),
        (dict(drop="layer1.coef"), "the array 'layer1.coef' is missing"),
        (dict(drop="layer0.grid"), "the array 'layer0.grid' is missing"),
        (dict(drop="train_input"), "the array 'train_input' is missing"),
        (dict(drop="config"), "has no 'config' entry"),
        (dict(config_change=dict(width=None)), "missing the field 'width'"),
        (dict(config_change=dict(width=[2, 0, 1])), "saved model description is invalid: width must contain positive integers"),
        (dict(config_change=dict(width=[2, 4, 1])), r"'layer0.coef' has shape \(2, 3, 8\); expected \(2, 4, 8\)"),
        (dict(config_change=dict(rng={"bit_generator": "os.system"})), "random generator 'os.system' is not one of"),
        (dict(config_change=dict(rng={"bit_generator": "PCG64", "state": "x"})), "state of the random generator is invalid"),
        (dict(add=dict(extra=np.zeros(3))), "unexpected arrays extra"),
        (dict(replace={"layer0.coef": np.zeros((2, 3, 8), dtype=np.float32)}), "'layer0.coef' has dtype float32"),
        (dict(replace={"layer0.coef": np.zeros((2, 3, 7))}), r"'layer0.coef' has shape \(2, 3, 7\); expected \(2, 3, 8\)"),
        (dict(replace={"layer1.affine": np.full((3, 1, 4), np.nan)}), "'layer1.affine' contains NaN or inf"),
        (dict(replace={"layer0.grid": np.zeros((2, 12))}), "knots 'layer0.grid' are not strictly increasing"),
        (dict(replace={"train_input": np.zeros((5, 3))}), r"'train_input' has shape \(5, 3\)"),
    ],
)
def test_invalid_contents_raise_value_error(saved, tmp_path, change, message):
    bad = rewrite(saved, tmp_path / "bad.npz", **change)
    with pytest.raises(ValueError, match=message):
        KAN.load(bad)


def test_invalid_layer_config_raises_value_error(saved, tmp_path):
    with np.load(saved) as npz:
        config = json.loads(npz["config"].tobytes())
    cases = {
        "'mask' contains values other than 0 and 1": dict(config["layers"][0], mask=[[2.0] * 3] * 2),
        "'sym_mask' is not a numeric table": dict(config["layers"][0], sym_mask=[["a"] * 3] * 2),
        r"symbolic edge \(5, 0\) is outside the layer": dict(config["layers"][0], symbolic=[[5, 0, "sin"]]),
        "a symbolic edge must be": dict(config["layers"][0], symbolic=[[0, 0]]),
        "missing the field 'mask'": {key: v for key, v in config["layers"][0].items() if key != "mask"},
    }
    for message, layer0 in cases.items():
        bad = rewrite(saved, tmp_path / "bad.npz", config_change=dict(layers=[layer0, config["layers"][1]]))
        with pytest.raises(ValueError, match=message):
            KAN.load(bad)


def test_load_rejects_non_archives(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "bad_json.npz").write_bytes(b"")
    np.savez(tmp_path / "bad_json.npz", config=np.frombuffer(b"{not json", dtype=np.uint8))
    with pytest.raises(ValueError, match="not an .npz"):
        KAN.load(tmp_path / "text.npz")
    with pytest.raises(ValueError, match="not an .npz"):
        KAN.load(tmp_path / "array.npy")
    with pytest.raises(ValueError, match="'config' entry is not valid JSON"):
        KAN.load(tmp_path / "bad_json.npz")
    with pytest.raises(ValueError, match="no model file at"):
        KAN.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="is a folder"):
        KAN.load(tmp_path)


def test_save_and_load_leave_global_random_state_alone(trained, tmp_path):
    state = np.random.get_state()[1].copy()
    KAN.load(trained.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_round_trip_keeps_pruned_input_ids(tmp_path):
    data = create_dataset(lambda x: np.sin(np.pi * x[:, [0]]) + x[:, [2]] ** 2, n_var=3, train_num=200, test_num=50, seed=0)
    model = KAN([3, 2, 1], grid=3, seed=0)
    model.fit(data, steps=3)
    model.prune_input(active_inputs=[0, 2])
    path = tmp_path / "pruned_inputs.npz"
    model.save(path)
    loaded = KAN.load(path)
    np.testing.assert_array_equal(loaded.input_id, [0, 2])
    np.testing.assert_array_equal(loaded(data["test_input"][:, [0, 2]]), model(data["test_input"][:, [0, 2]]))


def test_grid_margin_saved_and_defaulted(data, tmp_path):
    "The margin of grid updates is saved; a file written before it existed loads with the margin then in force, 0"
    model = KAN([2, 2, 1], grid=4, seed=2, grid_margin=0.01)
    model.fit(data, steps=2)
    path = model.save(tmp_path / "margin.npz")
    same = KAN.load(path)
    assert same.grid_margin == 0.01
    same.fit(data, steps=2)
    model.fit(data, steps=2)
    np.testing.assert_array_equal(same(data["test_input"]), model(data["test_input"]))
    with np.load(path, allow_pickle=False) as f:
        arrays = dict(f)
    config = json.loads(arrays["config"].tobytes().decode())
    del config["grid_margin"]
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    assert KAN.load(tmp_path / "old.npz").grid_margin == 0.0
