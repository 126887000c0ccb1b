"""Time one training step (forward + backward) of a [8, 32, 32, 1] KAN, and its peak memory.

Three implementations, all float64 on one thread, batch 4096, cubic splines:
  kan_nb      gradient of the mean squared error by autograd through the fast path;
              every step computes every layer's basis (the first layer's basis cache is cleared)
  efficient   an efficient-kan-style torch layer written below: the dense basis once per layer,
              then one matrix product for the spline branch and one for the base branch
  pykan       pykan 0.2.8's MultKAN with its speed mode on (skipped if pykan or torch is missing)

Each measurement runs in a fresh subprocess: one warm-up step, then `--steps` timed steps.
Rounds alternate the order of the implementations; the table shows the median over rounds.
Peak memory is the peak resident set size during the timed steps minus the size before them, after the
warm-up step's freed memory has been returned to the system (Linux only).

    python bench/step.py [--grids 10 100] [--rounds 3] [--steps 3] [--json bench/results/step.json]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

WIDTH = [8, 32, 32, 1]
BATCH = 4096
K = 3


def data(seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (BATCH, WIDTH[0]))
    y = np.sin(np.pi * x[:, :1]) * x[:, 1:2] + x[:, 2:3] ** 2
    return x, y


def kan_nb_step(G):
    "A function running one step, with the model built outside it"
    from autograd import grad
    from kan_nb import KAN
    from kan_nb.training import mse

    x, y = data()
    model = KAN(WIDTH, grid=G, k=K, seed=0)
    gradient = grad(lambda params: mse(model._forward(params, x), y))

    def step():
        for layer in model.layers:
            layer._basis_cache.clear()
        return gradient(model.params)

    return step


def efficient_layer_class():
    import torch
    import torch.nn.functional as F

    class EfficientKANLinear(torch.nn.Module):
        "One efficient-kan-style layer: the dense B-spline basis once, then one matrix product per branch"

        def __init__(self, n_in, n_out, G, k, generator):
            super().__init__()
            h = 2 / G
            knots = torch.arange(-k, G + k + 1, dtype=torch.float64) * h - 1  # uniform on [-1, 1], extended
            self.register_buffer("grid", knots.expand(n_in, -1).contiguous())  # (in, G+2k+1)
            self.k = k
            self.base_weight = torch.nn.Parameter((torch.rand(n_out, n_in, generator=generator) * 2 - 1) / n_in**0.5)
            noise = (torch.rand(n_out, n_in, G + k, generator=generator) - 0.5) * 0.1 / G
            self.spline_weight = torch.nn.Parameter(noise)
            self.spline_scaler = torch.nn.Parameter(torch.ones(n_out, n_in) / n_in**0.5)

        def b_splines(self, x):
            "Cox-de Boor recursion, (batch, in) -> (batch, in, G+k)"
            grid, x = self.grid, x.unsqueeze(-1)
            bases = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
            for p in range(1, self.k + 1):
                left = (x - grid[:, : -(p + 1)]) / (grid[:, p:-1] - grid[:, : -(p + 1)]) * bases[:, :, :-1]
                right = (grid[:, p + 1 :] - x) / (grid[:, p + 1 :] - grid[:, 1:(-p)]) * bases[:, :, 1:]
                bases = left + right
            return bases

        def forward(self, x):
            base = F.linear(F.silu(x), self.base_weight)
            weight = (self.spline_weight * self.spline_scaler.unsqueeze(-1)).view(self.spline_weight.shape[0], -1)
            return base + F.linear(self.b_splines(x).view(x.shape[0], -1), weight)

    return EfficientKANLinear


def torch_step(kind, G):
    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    x_np, y_np = data()
    x, y = torch.tensor(x_np), torch.tensor(y_np)
    if kind == "efficient":
        layer_class = efficient_layer_class()
        generator = torch.Generator().manual_seed(0)
        model = torch.nn.Sequential(*[layer_class(a, b, G, K, generator) for a, b in zip(WIDTH[:-1], WIDTH[1:])])
    else:
        import tempfile

        from kan import KAN as PyKAN

        model = PyKAN(width=WIDTH, grid=G, k=K, seed=0, auto_save=False, ckpt_path=tempfile.mkdtemp()).speed()

    def step():
        model.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        return loss

    return step


def memory_kb(field):
    "A field of /proc/self/status (VmRSS: resident size now, VmHWM: its peak), in KiB"
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def reset_peak_memory():
    "Return freed memory to the system and restart the VmHWM peak from the current size (Linux 4.0+)"
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(kind, G, steps):
    "Run in a subprocess: warm up, then time `steps` steps; print one JSON line"
    step = kan_nb_step(G) if kind == "kan_nb" else torch_step(kind, G)
    step()  # the warm-up step also performs lazy imports, which are not part of a step's memory
    reset_peak_memory()
    rss_before = memory_kb("VmRSS")
    wall, cpu = [], []
    for _ in range(steps):
        w, c = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    peak = memory_kb("VmHWM") - rss_before
    print(json.dumps(dict(kind=kind, G=G, wall=statistics.median(wall), cpu=statistics.median(cpu),
                          peak_mb=peak / 1024)))


def available(kind):
    if kind == "kan_nb":
        return True
    try:
        import torch  # noqa: F401

        if kind == "pykan":
            import kan  # noqa: F401
    except ImportError:
        return False
    return True


def run_one(kind, G, steps):
    cmd = [sys.executable, __file__, "--child", kind, str(G), "--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"{kind} G={G} failed:\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[10, 100], help="grid sizes G to measure")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds per grid size")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per subprocess, after one warm-up step")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "G"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return measure(args.child[0], int(args.child[1]), args.steps)

    kinds = [k for k in ("kan_nb", "efficient", "pykan") if available(k)]
    skipped = sorted({"kan_nb", "efficient", "pykan"} - set(kinds))
    print(f"[8,32,32,1] KAN, batch {BATCH}, k={K}, float64, one thread; {args.rounds} rounds x {args.steps} steps"
          + (f"; not installed: {', '.join(skipped)}" if skipped else ""), flush=True)
    results = {}
    for G in args.grids:
        for r in range(args.rounds):
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]  # alternate who goes first
            for kind in order:
                res = run_one(kind, G, args.steps)
                results.setdefault((kind, G), []).append(res)
                print(f"  G={G:<4d} round {r + 1}: {kind:<9s} wall {res['wall']:8.3f} s  cpu {res['cpu']:8.3f} s"
                      f"  peak +{res['peak_mb']:7.1f} MB", flush=True)

    rows = []
    print()
    print(f"{'G':>4s}  {'implementation':<14s} {'s/step (wall)':>13s} {'s/step (cpu)':>12s} {'peak MB':>8s}"
          f" {'wall spread':>12s} {'vs kan_nb (wall)':>16s} {'(cpu)':>6s}")
    for G in args.grids:
        ours = results[("kan_nb", G)]
        ours_wall = statistics.median(r["wall"] for r in ours)
        ours_cpu = statistics.median(r["cpu"] for r in ours)
        for kind in kinds:
            rs = results[(kind, G)]
            wall = statistics.median(r["wall"] for r in rs)
            cpu = statistics.median(r["cpu"] for r in rs)
            peak = statistics.median(r["peak_mb"] for r in rs)
            spread = f"{min(r['wall'] for r in rs):.3f}-{max(r['wall'] for r in rs):.3f}"
            rows.append(dict(G=G, kind=kind, wall=wall, cpu=cpu, peak_mb=peak,
                             ratio_wall=wall / ours_wall, ratio_cpu=cpu / ours_cpu))
            print(f"{G:4d}  {kind:<14s} {wall:13.3f} {cpu:12.3f} {peak:8.1f} {spread:>12s}"
                  f" {wall / ours_wall:15.1f}x {cpu / ours_cpu:5.1f}x")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(dict(python=platform.python_version(), rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
