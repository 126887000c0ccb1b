"""Run pykan's "hello, KAN" recipe with kan_nb and with pykan 0.2.8, and compare wall time per stage.

The recipe (pykan 0.2.8 settings): f(x, y) = exp(sin(pi x) + y^2), 1000 training and 1000 test points
uniform on [-1, 1]^2 (the same arrays for both libraries), a [2, 5, 1] KAN with G=3, k=3, seed 42;
fit 50 L-BFGS steps with lamb=1e-3 -> prune -> fit 50 -> grid 10 -> fit 50 ->
auto_symbolic with [x, x^2, x^3, x^4, exp, log, sqrt, tanh, sin, abs] -> fit 50.
pykan runs in float64 on one thread with auto_save=False; plots are skipped on both sides.

Every run is a fresh subprocess; rounds alternate which library goes first. The table shows the median
wall time of each stage over the rounds, the ratio pykan / kan_nb, and each side's final test RMSE and formula.
A kan_nb stage whose chapter is not there yet prints "not available" and is skipped.
The total then covers only the stages that both sides ran, and is marked partial.

    python bench/hellokan.py [--rounds 3] [--json bench/results/hellokan.json]
"""
import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

LIB = ["x", "x^2", "x^3", "x^4", "exp", "log", "sqrt", "tanh", "sin", "abs"]
STAGES = ["init", "fit lamb=1e-3", "prune", "fit", "grid 10", "fit ", "auto_symbolic", "fit  "]
NOT_AVAILABLE = "not available"


def dataset():
    import numpy as np
    from kan_nb import create_dataset

    return create_dataset(lambda x: np.exp(np.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2), n_var=2,
                          train_num=1000, test_num=1000, seed=0)


class Timer:
    "Wall time of each stage, in order; a stage that cannot run records `NOT_AVAILABLE`"

    def __init__(self):
        self.times = {}

    @contextlib.contextmanager
    def stage(self, name):
        start = time.perf_counter()
        yield
        self.times[name] = time.perf_counter() - start

    def skip(self, name):
        self.times[name] = NOT_AVAILABLE


def run_kan_nb():
    import numpy as np
    import sympy
    from kan_nb import KAN
    from kan_nb.training import rmse

    data = dataset()
    t = Timer()
    with t.stage("init"):
        model = KAN(width=[2, 5, 1], grid=3, k=3, seed=42)
    fits = iter(STAGES[3::2])
    if hasattr(KAN, "reg"):
        with t.stage("fit lamb=1e-3"):
            model.fit(data, opt="LBFGS", steps=50, lamb=1e-3, progress=False)
    else:
        t.skip("fit lamb=1e-3")
    for name, method, call in [("prune", "prune", lambda m: m.prune()),
                               ("grid 10", "grid_extend", lambda m: m.grid_extend(10)),
                               ("auto_symbolic", "auto_symbolic", lambda m: m.auto_symbolic(lib=LIB))]:
        if hasattr(KAN, method):
            with t.stage(name), contextlib.redirect_stdout(io.StringIO()):
                model = call(model)
        else:
            t.skip(name)
        with t.stage(next(fits)):
            model.fit(data, opt="LBFGS", steps=50, progress=False)
    formula = NOT_AVAILABLE
    if hasattr(KAN, "symbolic_formula") and t.times["auto_symbolic"] != NOT_AVAILABLE:
        expr = model.symbolic_formula()[0]
        formula = str(expr.xreplace({n: sympy.Float(round(float(n), 4)) for n in expr.atoms(sympy.Float)}))
    return dict(times=t.times, rmse=rmse(model(data["test_input"]), data["test_label"]), formula=formula,
                width=list(model.width))


def run_pykan():
    import tempfile

    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    from kan import KAN
    from kan.utils import ex_round

    data = {key: torch.tensor(value) for key, value in dataset().items()}
    checkpoints = tempfile.mkdtemp()  # pykan 0.2.8's prune and refine write a checkpoint even with auto_save=False
    t = Timer()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        with t.stage("init"):
            model = KAN(width=[2, 5, 1], grid=3, k=3, seed=42, auto_save=False, ckpt_path=checkpoints)
        with t.stage("fit lamb=1e-3"):
            model.fit(data, opt="LBFGS", steps=50, lamb=1e-3)
        with t.stage("prune"):
            model = model.prune()
            model.auto_save = False  # the pruned copy comes back with auto_save=True
        with t.stage("fit"):
            model.fit(data, opt="LBFGS", steps=50)
        with t.stage("grid 10"):
            model = model.refine(10)
            model.auto_save = False
        with t.stage("fit "):
            model.fit(data, opt="LBFGS", steps=50)
        with t.stage("auto_symbolic"):
            model.auto_symbolic(lib=LIB)
        with t.stage("fit  "):
            model.fit(data, opt="LBFGS", steps=50)
        with torch.no_grad():
            test_rmse = torch.sqrt(torch.mean((model(data["test_input"]) - data["test_label"]) ** 2)).item()
        formula = str(ex_round(model.symbolic_formula()[0][0], 4))
    width = [w[0] if isinstance(w, list) else w for w in model.width]  # pykan lists (sums, products) per layer
    return dict(times=t.times, rmse=test_rmse, formula=formula, width=width)


def pykan_available():
    try:
        import kan  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_child(side):
    res = run_kan_nb() if side == "kan_nb" else run_pykan()
    print(json.dumps(res))


def run_one(side):
    out = subprocess.run([sys.executable, __file__, "--child", side], capture_output=True, text=True)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"{side} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def fmt(seconds):
    return f"{seconds:9.3f}" if isinstance(seconds, float) else f"{seconds:>9s}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternated runs of each library")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--child", choices=["kan_nb", "pykan"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args.child)

    sides = ["kan_nb", "pykan"] if pykan_available() else ["kan_nb"]
    if len(sides) == 1:
        print("pykan or torch is not installed: timing kan_nb only (pip install pykan==0.2.8 torch)")
    runs = {side: [] for side in sides}
    for r in range(args.rounds):
        for side in (sides if r % 2 == 0 else sides[::-1]):
            res = run_one(side)
            runs[side].append(res)
            total = sum(v for v in res["times"].values() if isinstance(v, float))
            print(f"  round {r + 1}: {side:<7s} {total:8.2f} s  test RMSE {res['rmse']:.3e}", flush=True)

    med = {side: {s: (statistics.median(run["times"][s] for run in runs[side])
                      if all(isinstance(run["times"][s], float) for run in runs[side]) else NOT_AVAILABLE)
                  for s in STAGES} for side in sides}
    both = [s for s in STAGES if all(isinstance(med[side][s], float) for side in sides)]
    partial = len(both) < len(STAGES)
    print()
    print(f"{'stage':<15s}" + "".join(f"{side:>10s}" for side in sides) + ("  pykan/kan_nb" if len(sides) == 2 else ""))
    for s in STAGES:
        line = f"{s.strip():<15s}" + "".join(f" {fmt(med[side][s])}" for side in sides)
        if len(sides) == 2 and s in both:
            line += f"  {med['pykan'][s] / med['kan_nb'][s]:10.1f}x"
        print(line)
    totals = {side: sum(med[side][s] for s in both) for side in sides}
    line = f"{'total' + (' (partial)' if partial else ''):<15s}" + "".join(f" {totals[side]:9.3f}" for side in sides)
    if len(sides) == 2:
        line += f"  {totals['pykan'] / totals['kan_nb']:10.1f}x"
    print(line)
    for side in sides:
        last = runs[side][-1]
        print(f"{side}: width {last['width']}, final test RMSE {statistics.median(r['rmse'] for r in runs[side]):.3e}, "
              f"formula {last['formula']}")
    if partial:
        print("partial: stages marked 'not available' are missing from kan_nb and left out of both totals")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(dict(median=med, totals=totals, partial=partial, runs=runs), f, indent=1)


if __name__ == "__main__":
    main()
