"""Benchmark: LSTMValueModel training throughput against a plain reference.

Both train the SAME architecture (LSTM with `hidden` units over 3 channels per
week: purchases, views, revenue; a static-feature layer; a 2-layer head with 3
ZILN outputs) on the same seeded synthetic data (default 100k customers x 52
weeks, customers acquired uniformly over the year, purchase rates trending up
or down; value target = next 13 weeks' revenue), with the same validation
customers and the same ZILN loss in the same units.

* reference: the straightforward PyTorch loop: full 52-week sequences, a
  DataLoader over a TensorDataset (batch 1024, shuffled), Adam lr 1e-3, and
  validation under no_grad.
* ours: analytics.predict.lstm.LSTMValueModel (pre-built tensors, sequences
  read from the first active week (rounded up to 4 weeks) in dense
  window-bucketed batches of 256, inference_mode validation).

Prints per-epoch time, throughput (customers x periods / s over the training
customers), their ratio, the validation ZILN loss after every epoch, and the
time each needed to reach the reference's final validation loss.

    .venv/bin/python bench/bench_lstm.py [--customers 100000] [--epochs 5] [--device cpu] [--threads 2]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np

import analytics.predict  # noqa: F401  (sets the OpenMP wait policy before torch loads)
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from analytics.device import describe_device, pick_device
from analytics.predict.lstm import LSTMValueModel, ziln_loss

HOLDOUT = 13


def make_data(n: int, periods: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    start = rng.integers(0, periods, n)  # first active week, uniform over the year
    r0 = rng.lognormal(-2.3, 0.7, n)
    slope = rng.uniform(-2.0, 2.0, n)
    aov = rng.lognormal(3.5, 0.5, n)
    t = np.arange(periods + HOLDOUT, dtype=np.float32)[None, :]
    rate = np.where(t >= start[:, None], r0[:, None] * np.exp(slope[:, None] * (t - start[:, None]) / periods), 0.0)
    buys = rng.poisson(rate).astype(np.float32)
    buys[np.arange(n), start] = np.maximum(buys[np.arange(n), start], 1)  # the acquisition purchase
    views = rng.poisson(4 * rate + 0.2 * (t >= start[:, None])).astype(np.float32)
    revenue = buys * aov[:, None].astype(np.float32)
    seq = np.stack([buys[:, :periods], views[:, :periods], revenue[:, :periods]], axis=2)
    y = revenue[:, periods:].sum(axis=1).astype(np.float64)
    cal_buys = seq[:, :, 0].sum(axis=1)
    static = np.column_stack([
        np.log1p(cal_buys), np.log1p(seq[:, :, 2].sum(axis=1) / np.maximum(cal_buys, 1)),
        rng.normal(size=n), rng.integers(0, 2, n),
    ]).astype(np.float32)
    return seq, static, y


class RefNet(nn.Module):
    def __init__(self, channels, n_static, hidden, static_hidden):
        super().__init__()
        self.lstm = nn.LSTM(channels, hidden, batch_first=True)
        self.static = nn.Sequential(nn.Linear(n_static, static_hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(hidden + static_hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, seq, static):
        _, (h, _) = self.lstm(seq)
        return self.head(torch.cat([h[-1], self.static(static)], dim=1))


def reference(seq, static, y, seq_v, static_v, y_v, args, device, y_scale, quiet=False):
    """The plain implementation: DataLoader, batch 1024, full sequences."""
    torch.manual_seed(0)
    sd = np.log1p(seq).reshape(-1, seq.shape[2]).std(axis=0)
    mean, std = static.mean(axis=0), static.std(axis=0) + 1e-6

    def prep(s, st, yy):
        return (torch.from_numpy((np.log1p(s) / sd).astype(np.float32)),
                torch.from_numpy(((st - mean) / std).astype(np.float32)),
                torch.from_numpy((yy / y_scale).astype(np.float32)))

    train_ds = TensorDataset(*prep(seq, static, y))
    val_ds = TensorDataset(*prep(seq_v, static_v, y_v))
    loader = DataLoader(train_ds, batch_size=1024, shuffle=True)
    val_loader = DataLoader(val_ds, batch_size=1024)
    net = RefNet(seq.shape[2], static.shape[1], args.hidden, 16).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    rows = []
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        c0 = time.process_time()
        net.train()
        for xs, xst, yy in loader:
            xs, xst, yy = xs.to(device), xst.to(device), yy.to(device)
            loss = ziln_loss(net(xs, xst), yy)
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_s = time.perf_counter() - t0
        net.eval()
        total = 0.0
        with torch.no_grad():
            for xs, xst, yy in val_loader:
                xs, xst, yy = xs.to(device), xst.to(device), yy.to(device)
                total += float(ziln_loss(net(xs, xst), yy)) * len(yy)
        rows.append({"epoch": epoch, "epoch_s": time.perf_counter() - t0, "train_s": train_s,
                     "cpu_s": time.process_time() - c0,
                     "val_loss": total / len(val_ds), "elapsed_s": time.perf_counter() - started})
        if not quiet:
            print(f"  reference epoch {epoch}: {rows[-1]['epoch_s']:.1f} s wall, {rows[-1]['cpu_s']:.1f} s CPU, val ZILN {rows[-1]['val_loss']:.4f}", flush=True)
    return rows


def ours(seq, static, y, seq_v, static_v, y_v, args, device):
    rows = []
    last = [time.perf_counter()]
    last_cpu = [time.process_time()]

    def progress(row):
        now, cpu = time.perf_counter(), time.process_time()
        rows.append({"epoch": row["epoch"], "epoch_s": now - last[0], "cpu_s": cpu - last_cpu[0],
                     "val_loss": row["val_loss"], "elapsed_s": now - t_start})
        last[0], last_cpu[0] = now, cpu
        print(f"  ours epoch {row['epoch']}: {rows[-1]['epoch_s']:.1f} s wall, {rows[-1]['cpu_s']:.1f} s CPU, val ZILN {row['val_loss']:.4f}", flush=True)

    model = LSTMValueModel(hidden_size=args.hidden, epochs=args.epochs, patience=args.epochs, batch_size=args.batch,
                           device=device, num_threads=args.threads if device == "cpu" else None, random_state=0)
    t_start = last[0] = time.perf_counter()
    last_cpu[0] = time.process_time()
    model.fit(seq, static, y, validation_data=(seq_v, static_v, y_v), progress=progress)
    return rows, model


def time_to_reach(rows, target):
    for r in rows:
        if r["val_loss"] <= target:
            return r["elapsed_s"], r["epoch"]
    return None, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--periods", type=int, default=52)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256, help="our batch size (the reference always uses 1024)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-reference", action="store_true")
    args = ap.parse_args()

    device = pick_device(args.device)
    torch.set_num_threads(args.threads)
    seq, static, y = make_data(args.customers, args.periods)
    n_val = args.customers // 10
    tr = slice(n_val, None)
    va = slice(0, n_val)
    n_train = args.customers - n_val
    y_scale = float(np.median(y[tr][y[tr] > 0]))  # the same units LSTMValueModel uses
    print(f"machine: {platform.node()} ({os.cpu_count()} cores), torch {torch.__version__}, "
          f"device {describe_device(device)}, torch threads {torch.get_num_threads()}")
    print(f"data: {args.customers:,} customers x {args.periods} weeks x 3 channels (+4 static); "
          f"{n_train:,} train / {n_val:,} validation; purchasers in holdout {np.mean(y > 0):.1%}; "
          f"mean active weeks {np.mean(args.periods - (seq.sum(axis=2) != 0).argmax(axis=1)):.1f}")

    # Warm both code paths up (torch's lazy init and oneDNN/cuDNN kernel set-up
    # are paid once per process) so neither timing carries the other's one-off cost.
    wseq, wst, wy = make_data(600, args.periods, seed=1)
    wargs = argparse.Namespace(**{**vars(args), "epochs": 1})
    reference(wseq[:500], wst[:500], wy[:500], wseq[500:], wst[500:], wy[500:], wargs, device, y_scale, quiet=True)
    LSTMValueModel(hidden_size=args.hidden, epochs=1, batch_size=args.batch, device=device,
                   num_threads=args.threads if device == "cpu" else None).fit(wseq, wst, wy)

    ref_rows = None
    if not args.skip_reference:
        print("reference (DataLoader, batch 1024, full sequences):", flush=True)
        ref_rows = reference(seq[tr], static[tr], y[tr], seq[va], static[va], y[va], args, device, y_scale)
    print(f"ours (LSTMValueModel, batch {args.batch}):", flush=True)
    our_rows, model = ours(seq[tr], static[tr], y[tr], seq[va], static[va], y[va], args, device)

    work = n_train * args.periods

    def steady(rows, key="epoch_s"):  # epoch 1 carries one-off setup; report it apart
        return float(np.median([r[key] for r in (rows[1:] or rows)]))

    our_epoch = steady(our_rows)
    our_cpu = steady(our_rows, "cpu_s")
    print()
    print(f"ours: first epoch (incl. setup) {our_rows[0]['epoch_s']:.2f} s, median later epoch {our_epoch:.2f} s, throughput {work / our_epoch:,.0f} customer-periods/s, "
          f"best val ZILN {min(r['val_loss'] for r in our_rows):.4f}; CPU time per epoch {our_cpu:.2f} s")
    if ref_rows:
        ref_epoch = steady(ref_rows)
        ref_cpu = steady(ref_rows, "cpu_s")
        print(f"reference: first epoch {ref_rows[0]['epoch_s']:.2f} s, median later epoch {ref_epoch:.2f} s, throughput {work / ref_epoch:,.0f} customer-periods/s, "
              f"final val ZILN {ref_rows[-1]['val_loss']:.4f}; CPU time per epoch {ref_cpu:.2f} s")
        print(f"throughput ratio ours / reference: {ref_epoch / our_epoch:.2f}x by wall time, "
              f"{ref_cpu / our_cpu:.2f}x by CPU time (robust to other load on a shared machine)")
        print(f"after {args.epochs} epochs: val ZILN reference {ref_rows[-1]['val_loss']:.4f} vs ours "
              f"{our_rows[-1]['val_loss']:.4f}")
        target = ref_rows[-1]["val_loss"]
        t_ours, e_ours = time_to_reach(our_rows, target)
        t_ref = ref_rows[-1]["elapsed_s"]
        if t_ours is None:
            print(f"ours did not reach the reference's final val ZILN {target:.4f} within {args.epochs} epochs")
        else:
            print(f"wall time (setup included) to reach the reference's final val ZILN {target:.4f}: "
                  f"reference {t_ref:.1f} s, ours {t_ours:.1f} s (epoch {e_ours}) -> {t_ref / t_ours:.2f}x faster at equal validation loss")


if __name__ == "__main__":
    main()
