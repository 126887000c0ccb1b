"""Run the grid-extension staircase of the grid extension chapter at full size and print the test RMSE per grid.

The experiment: f(x, y) = exp(sin(pi x) + y^2), train_num training and 1000 test points uniform on [-1, 1]^2
(`create_dataset(..., seed=data_seed)`), a [2, 1, 1] KAN with k = 3 that starts at the first grid and is trained
for `steps` L-BFGS steps on each grid, refined with `KAN.grid_extend` between grids.

Two sets of settings:
- `chapter` (default): equal base weights (scale_base_mu=1, scale_base_sigma=0), uniform grid updates
  (grid_eps=1) reaching 0.01 beyond the samples (grid_margin=0.01, as pykan's first releases), and `fit`'s
  default grid updates: ten, spread over the 50 steps of every grid.
- `defaults`: kan_nb's defaults: random-sign base weights, grid_eps=0.02 (also pykan's default),
  no margin, grid updates during the first 50 steps.

For every (data seed, model seed) the script prints one row per grid. A row shows the train RMSE, the test RMSE,
and the test RMSE over the test points inside the training range of every node (input and hidden). It also shows
how many test points lie outside that range, the paper-era pykan (v0.0.2) number where one exists, the cumulative
CPU time, and whether grid_extend warned about sparse data. The fitted log-log slope of test RMSE against G
(over G >= 10) follows each table. With --png the script also saves the loss curves and the scaling plot.

    OMP_NUM_THREADS=1 python bench/grid_extension.py [--train-num 3000] [--grids 3 5 10 20 50 100 200]
        [--steps 50] [--seeds 0] [--data-seeds 0] [--settings chapter|defaults] [--png bench/results/grid_extension.png]
"""
import argparse
import os
import time
import warnings

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np

from kan_nb import KAN, create_dataset

# test RMSE of pykan v0.0.2 for this experiment with 50 steps per grid: 1000 training points, and G = 100 with 3000
PYKAN_V002 = {1000: {5: 6.8e-3, 10: 3.6e-4, 20: 4.0e-5, 50: 8.2e-6, 100: 6.5e-6}, 3000: {100: 3.3e-8}}

SETTINGS = {
    "chapter": dict(init=dict(scale_base_mu=1.0, scale_base_sigma=0.0, grid_eps=1.0, grid_margin=0.01), fit={}),
    "defaults": dict(init={}, fit={}),
}


def paper_f(x):
    return np.exp(np.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2)


def inside_training_range(model, x_train, x_test):
    "Mask (n_test,) of test points whose inputs to every layer lie within the training samples' range at that node"
    acts_train = model._forward(model.params, x_train, edges=True)[1]
    acts_test = model._forward(model.params, x_test, edges=True)[1]
    inside = np.ones(len(x_test), bool)
    for a, b in zip(acts_train, acts_test):
        inside &= ((b["x"] >= a["x"].min(0)) & (b["x"] <= a["x"].max(0))).all(1)
    return inside


def staircase(data, grids, steps, seed, settings):
    "Train one [2, 1, 1] KAN through `grids`; return the per-step test losses and one result dict per grid"
    model = KAN([2, 1, 1], grid=grids[0], seed=seed, **settings["init"])
    losses, rows = [], []
    start = time.process_time()
    for G in grids:
        caught = []
        if G != grids[0]:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.grid_extend(G)
        history = model.fit(data, steps=steps, log=0, **settings["fit"])
        losses += history["test_loss"]
        inside = inside_training_range(model, data["train_input"], data["test_input"])
        err = (model(data["test_input"]) - data["test_label"])[:, 0]
        rows.append(dict(G=G, train=history["train_loss"][-1], test=history["test_loss"][-1],
                         test_inside=float(np.sqrt(np.mean(err[inside] ** 2))), n_outside=int((~inside).sum()),
                         cpu=time.process_time() - start, warned=bool(caught)))
    return losses, rows


def slope(rows, key, G_min=10):
    "Least-squares slope of log(row[key]) against log(G) over the grids >= G_min"
    G = np.array([r["G"] for r in rows if r["G"] >= G_min])
    values = np.array([r[key] for r in rows if r["G"] >= G_min])
    return float(np.polyfit(np.log(G), np.log(values), 1)[0]) if len(G) >= 2 else float("nan")


def print_table(rows, reference):
    print("|    G | train RMSE | test RMSE | inside range | outside | pykan v0.0.2 | CPU s | sparse-data warning |")
    print("|-----:|-----------:|----------:|-------------:|--------:|-------------:|------:|:--------------------|")
    for r in rows:
        ref = f"{reference[r['G']]:.1e}" if r["G"] in reference else "-"
        print(f"| {r['G']:4d} | {r['train']:10.1e} | {r['test']:9.1e} | {r['test_inside']:12.1e} | {r['n_outside']:7d} "
              f"| {ref:>12} | {r['cpu']:5.0f} | {'yes' if r['warned'] else ''} |")
    print(f"fitted slope over G >= 10: {slope(rows, 'test'):.2f} (all test points), "
          f"{slope(rows, 'test_inside'):.2f} (inside the training range)")


def save_png(path, runs, grids, steps):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_scale) = plt.subplots(1, 2, figsize=(11, 4))
    for label, (losses, rows) in runs.items():
        ax_loss.semilogy(losses, label=label)
        line, = ax_scale.loglog([r["G"] for r in rows], [r["test"] for r in rows], "o-", label=f"{label}, all")
        ax_scale.loglog([r["G"] for r in rows], [r["test_inside"] for r in rows], "s--", color=line.get_color(),
                        label=f"{label}, inside range")
    for n in range(len(grids)):
        ax_loss.axvline(steps * n, color="0.85", lw=0.8, zorder=-1)
    G_ref = np.array([grids[0], grids[-1]], dtype=float)
    first = next(iter(runs.values()))[1][0]["test"]
    ax_scale.loglog(G_ref, first * (G_ref / G_ref[0]) ** -4, "k:", label="G^-4")
    ax_loss.set(xlabel=f"step ({steps} per grid)", ylabel="test RMSE", title="staircase")
    ax_scale.set(xlabel="G", ylabel="test RMSE", title="test RMSE against G")
    ax_loss.legend(fontsize=7)
    ax_scale.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"saved {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-num", type=int, default=3000, help="number of training points (default 3000)")
    parser.add_argument("--grids", type=int, nargs="+", default=[3, 5, 10, 20, 50, 100, 200],
                        help="grid sizes G in order (default 3 5 10 20 50 100 200)")
    parser.add_argument("--steps", type=int, default=50, help="L-BFGS steps per grid (default 50)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="model seeds (default 0)")
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[0], help="dataset seeds (default 0)")
    parser.add_argument("--settings", choices=sorted(SETTINGS), default="chapter",
                        help="'chapter' (default) or 'defaults' (kan_nb's default initialisation and grid updates)")
    parser.add_argument("--png", help="save the loss curves and the scaling plot to this PNG file")
    args = parser.parse_args()

    reference = PYKAN_V002.get(args.train_num, {})
    runs = {}
    for data_seed in args.data_seeds:
        data = create_dataset(paper_f, n_var=2, train_num=args.train_num, test_num=1000, seed=data_seed)
        for seed in args.seeds:
            print(f"\n[2, 1, 1], {args.train_num} training points, data seed {data_seed}, model seed {seed}, "
                  f"{args.steps} steps per grid, settings '{args.settings}'")
            losses, rows = staircase(data, args.grids, args.steps, seed, SETTINGS[args.settings])
            print_table(rows, reference)
            runs[f"data {data_seed}, seed {seed}"] = (losses, rows)
    if args.png:
        save_png(args.png, runs, args.grids, args.steps)


if __name__ == "__main__":
    main()
