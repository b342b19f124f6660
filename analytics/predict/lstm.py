"""LSTM value predictor over per-period behaviour sequences, with the ZILN loss.

The model reads each customer's per-period (weekly or monthly) behaviour counts
and revenue, ``[n_customers, n_periods, n_channels]``, plus static features
``[n_customers, n_static]``, and outputs three numbers per customer: the logit
of purchasing in the holdout and the mean ``mu`` and scale ``sigma`` of a
lognormal for the holdout value given a purchase. It is trained with the
zero-inflated lognormal (ZILN) loss of

    Wang, X., Liu, T. and Miao, J. (2019). "A Deep Probabilistic Model for
    Customer Lifetime Value Prediction." arXiv:1912.07753.

ZILN loss = binary cross-entropy of the purchase logit against ``value > 0`` +
the lognormal negative log-likelihood of the value over purchasers (averaged
over all customers). The expected holdout value is
``p * exp(mu + sigma**2 / 2)``.

Speed (see bench/bench_lstm.py). Everything is turned into tensors once, on the
training device; batches are slices of pre-built tensors (no DataLoader, no
per-sample collate). The LSTM reads each customer's periods from their first
active one, rounded up to a multiple of ``bucket_width`` periods (the window);
every batch holds customers of one window, so it is a dense tensor that runs
through the fused LSTM kernel, leading empty periods cost (almost) nothing,
and a customer's prediction never depends on who else is in the batch.
Batches are shuffled within windows and in order. The number of active
periods is given to the head as an extra static input, so no information is
lost by dropping the leading empty periods. Validation runs under
``torch.inference_mode``. On CUDA: automatic mixed precision (fp16 autocast
with a GradScaler; the loss is computed in float32), pinned host memory and
non-blocking copies for data too big to keep on the GPU. Not measured on a GPU
yet (none was available while this was written); ``tests/predict/test_lstm.py``
has a ``gpu``-marked test for it.

Validation: early stopping watches the ZILN loss on a validation split. Pass one
carved from the calibration period (``validation_data=``); if none is given, a
random ``validation_fraction`` of the training customers is held out (a
customer split). The best epoch's weights are restored at the end.
"""
from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from analytics.device import pick_device
from sklearn.base import BaseEstimator

from analytics.predict import NotFittedError

__all__ = ["LSTMValueModel", "ziln_loss", "ziln_expected_value"]

_LOG_2PI_HALF = 0.5 * math.log(2 * math.pi)


def ziln_loss(out, y):
    """Mean ZILN loss of network outputs ``out`` [B, 3] = (logit, mu, sigma_raw)
    against non-negative values ``y`` [B] (Wang, Liu & Miao 2019)."""
    import torch
    import torch.nn.functional as F

    out = out.float()
    logit, mu, sigma = out[:, 0], out[:, 1], F.softplus(out[:, 2]) + 1e-3
    positive = (y > 0).float()
    bce = F.binary_cross_entropy_with_logits(logit, positive)
    log_y = torch.log(torch.where(y > 0, y, torch.ones_like(y)))
    nll = log_y + torch.log(sigma) + _LOG_2PI_HALF + (log_y - mu) ** 2 / (2 * sigma**2)
    return bce + (positive * nll).mean()


def ziln_expected_value(out):
    """(p(purchase), expected value) from network outputs [B, 3]."""
    import torch
    import torch.nn.functional as F

    out = out.float()
    p = torch.sigmoid(out[:, 0])
    sigma = F.softplus(out[:, 2]) + 1e-3
    return p, p * torch.exp(torch.clamp(out[:, 1] + sigma**2 / 2, max=30.0))


def _build_net(n_channels: int, n_static: int, hidden: int, static_hidden: int, num_layers: int, dropout: float):
    import torch
    from torch import nn

    class ZILNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(n_channels, hidden, num_layers=num_layers, batch_first=True,
                                dropout=dropout if num_layers > 1 else 0.0)
            self.static = nn.Sequential(nn.Linear(n_static, static_hidden), nn.ReLU())
            self.head = nn.Sequential(nn.Linear(hidden + static_hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3))

        def forward(self, seq, static):
            _, (h, _) = self.lstm(seq)
            return self.head(torch.cat([h[-1], self.static(static)], dim=1))

    return ZILNNet()


class LSTMValueModel(BaseEstimator):
    """LSTM over per-period behaviour + static features, ZILN output.

    Parameters
    ----------
    hidden_size : LSTM hidden units. static_hidden : units of the static-feature layer.
    num_layers, dropout : LSTM depth and inter-layer dropout.
    epochs : maximum epochs. patience : epochs without validation improvement before stopping.
    batch_size : customers per step. On the CPU small batches are *faster* per
        customer than large ones (the LSTM's gate activations stay in cache:
        measured 256 -> ~1.5x the customers/s of 1024 and ~1.8x of 4096); on a GPU use
        thousands. learning_rate : Adam step size; None means 1e-3, scaled by
        sqrt(batch_size / 1024) above 1024.
    weight_decay : Adam L2 penalty. grad_clip : max gradient norm (None: no clipping).
    validation_fraction : share of training customers held out when ``fit`` gets
        no ``validation_data``; 0 = no validation: train exactly ``epochs`` epochs and keep
        the last weights (a refit with the epoch count a validation run chose).
    bucket_width : sequence lengths are bucketed in steps of this many periods.
    device : 'auto' (CUDA, then MPS, then CPU), 'cuda', 'mps' or 'cpu'.
    mixed_precision : use autocast on CUDA (ignored elsewhere).
    num_threads : torch CPU threads while fitting/predicting (None: leave as is).
    random_state : seed for weights, shuffling and the validation split.
    """

    def __init__(
        self,
        hidden_size: int = 32,
        static_hidden: int = 16,
        num_layers: int = 1,
        dropout: float = 0.0,
        epochs: int = 30,
        patience: int = 4,
        batch_size: int = 256,
        learning_rate: float | None = None,
        weight_decay: float = 0.0,
        grad_clip: float | None = 5.0,
        validation_fraction: float = 0.1,
        bucket_width: int = 4,
        device: str = "auto",
        mixed_precision: bool = True,
        num_threads: int | None = None,
        random_state: int = 0,
    ):
        self.hidden_size = hidden_size
        self.static_hidden = static_hidden
        self.num_layers = num_layers
        self.dropout = dropout
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.validation_fraction = validation_fraction
        self.bucket_width = bucket_width
        self.device = device
        self.mixed_precision = mixed_precision
        self.num_threads = num_threads
        self.random_state = random_state

    # -- input handling ----------------------------------------------------------------
    @staticmethod
    def _check_inputs(X_seq, X_static, n_channels=None, n_static=None):
        seq = np.asarray(X_seq, dtype=np.float32)
        if seq.ndim != 3:
            raise ValueError("sequences must be a 3-D array [customers, periods, channels]")
        n, t, c = seq.shape
        if n == 0 or t == 0 or c == 0:
            raise ValueError("sequences are empty (no customers, periods or channels)")
        if not np.isfinite(seq).all():
            raise ValueError("sequences must be finite numbers")
        if X_static is None:
            stat = np.zeros((n, 0), dtype=np.float32)
        else:
            stat = np.asarray(X_static, dtype=np.float32)
            if stat.ndim == 1:
                stat = stat[:, None]
            if stat.ndim != 2 or stat.shape[0] != n:
                raise ValueError(f"static features must be a 2-D array with {n} rows")
            if not np.isfinite(stat).all():
                raise ValueError("static features must be finite numbers")
        if n_channels is not None and c != n_channels:
            raise ValueError(f"sequences have {c} channels; the model was fitted on {n_channels}")
        if n_static is not None and stat.shape[1] != n_static:
            raise ValueError(f"{stat.shape[1]} static features given; the model was fitted on {n_static}")
        return seq, stat

    def _transform(self, seq: np.ndarray, stat: np.ndarray):
        """Scale; returns (seq, window, static): ``window`` is how many trailing
        periods the LSTM reads for each customer: the periods since the first
        active one, rounded up to a multiple of ``bucket_width``."""
        n, t, _ = seq.shape
        active = (seq != 0).any(axis=2)
        first = np.where(active.any(axis=1), active.argmax(axis=1), t - 1)
        lengths = (t - first).astype(np.int64)
        w = max(1, int(self.bucket_width))
        window = np.minimum(t, -(-lengths // w) * w).astype(np.int64)
        scaled = (np.log1p(np.maximum(seq, 0.0)) / self.seq_scale_).astype(np.float32)
        static = (stat - self.static_mean_) / self.static_std_
        tenure = (np.log1p(lengths) / math.log1p(t)).astype(np.float32)[:, None]
        return scaled, window, np.hstack([static, tenure]).astype(np.float32)

    # -- fitting -------------------------------------------------------------------------
    def fit(
        self,
        X_seq,
        X_static,
        y_value,
        *,
        validation_data: tuple | None = None,
        progress: Callable[[dict], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> "LSTMValueModel":
        """Train on sequences ``X_seq`` [n, periods, channels] (counts and revenue
        per period, raw: scaling is learned here), ``X_static`` [n, k] (or None)
        and holdout value ``y_value`` [n] (>= 0; purchase = value > 0).

        ``validation_data=(X_seq_val, X_static_val, y_value_val)``: the early-stopping
        set (carve it from the calibration period). Without it a random
        ``validation_fraction`` of the customers is held out.
        ``progress(dict)`` is called after every epoch with epoch, epochs,
        train_loss, val_loss, val_metric (normalized Gini of the validation
        expected value), eta_s and elapsed_s. ``should_stop()`` is checked between
        batches; when it returns True training ends and the best weights so far
        are kept (``cancelled_`` is then True).
        """
        import torch

        from analytics.predict.metrics import normalized_gini

        seq, stat = self._check_inputs(X_seq, X_static)
        y = np.asarray(y_value, dtype=np.float64).ravel()
        if y.size != seq.shape[0]:
            raise ValueError(f"y_value has {y.size} values for {seq.shape[0]} customers")
        if not np.isfinite(y).all() or (y < 0).any():
            raise ValueError("holdout value must be finite and not negative")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        device = pick_device(self.device)
        rng = np.random.default_rng(self.random_state)

        if validation_data is None and self.validation_fraction == 0:
            seq_v = stat_v = y_v = None
        elif validation_data is None:
            if not 0 < self.validation_fraction < 1:
                raise ValueError("validation_fraction must be in (0, 1) when no validation data is given")
            n_val = int(round(self.validation_fraction * seq.shape[0]))
            if n_val < 1 or seq.shape[0] - n_val < 2:
                raise ValueError("too few customers to hold out a validation split")
            perm = rng.permutation(seq.shape[0])
            vi, ti = perm[:n_val], perm[n_val:]
            seq_v, stat_v, y_v = seq[vi], stat[vi], y[vi]
            seq, stat, y = seq[ti], stat[ti], y[ti]
        else:
            if len(validation_data) != 3:
                raise ValueError("validation_data must be (X_seq_val, X_static_val, y_value_val)")
            seq_v, stat_v = self._check_inputs(validation_data[0], validation_data[1], seq.shape[2], stat.shape[1])
            y_v = np.asarray(validation_data[2], dtype=np.float64).ravel()
            if y_v.size != seq_v.shape[0] or (y_v < 0).any() or not np.isfinite(y_v).all():
                raise ValueError("validation values must be one finite, non-negative value per customer")
        if not (y > 0).any():
            raise ValueError("no customer has positive holdout value in the training data")

        # scalers learned on the training part only
        self.n_periods_ = int(seq.shape[1])
        self.n_channels_ = int(seq.shape[2])
        self.n_static_ = int(stat.shape[1])
        logged = np.log1p(np.maximum(seq, 0.0))
        sd = logged.reshape(-1, self.n_channels_).std(axis=0)
        self.seq_scale_ = np.where(sd > 0, sd, 1.0).astype(np.float32)
        self.static_mean_ = stat.mean(axis=0).astype(np.float32)
        ss = stat.std(axis=0)
        self.static_std_ = np.where(ss > 0, ss, 1.0).astype(np.float32)
        self.y_scale_ = float(np.median(y[y > 0]))
        self.device_ = device

        threads_before = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        try:
            with torch.random.fork_rng(devices=[torch.cuda.current_device()] if device.startswith("cuda") else []):
                torch.manual_seed(int(self.random_state))
                self._train(seq, stat, y, seq_v, stat_v, y_v, device, rng, progress, should_stop, normalized_gini)
        finally:
            torch.set_num_threads(threads_before)
        return self

    def _tensors(self, seq, stat, device):
        import torch

        aligned, window, static = self._transform(seq, stat)
        on_device = device.startswith("cuda") or device == "mps"
        a, s = torch.from_numpy(aligned), torch.from_numpy(static)
        if on_device:
            if aligned.nbytes < 4 * 2**30 or device == "mps":
                a, s = a.to(device), s.to(device)
            else:  # big: keep on the host, pinned, and copy batches asynchronously
                a, s = a.pin_memory(), s.pin_memory()
        return a, window, s

    def _batches(self, window: np.ndarray, rng: np.random.Generator | None):
        """Index batches; every batch holds customers with the same window
        (shuffled within windows and in batch order when rng is given)."""
        batches = []
        for win in np.unique(window):
            members = np.flatnonzero(window == win)
            if rng is not None:
                members = members[rng.permutation(members.size)]
            batches += [members[i : i + self.batch_size] for i in range(0, members.size, self.batch_size)]
        if rng is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _forward(self, net, a, win, s, idx, device):
        """Network outputs for the customers ``idx`` (all with the same window)."""
        import torch

        idx_t = torch.from_numpy(idx)
        w = int(win[idx[0]])
        if a.device.type != torch.device(device).type:
            xa = a[idx_t, a.shape[1] - w :].to(device, non_blocking=True)
            xs = s[idx_t].to(device, non_blocking=True)
        else:
            di = idx_t.to(a.device)
            xa, xs = a[di, a.shape[1] - w :], s[di]
        return net(xa, xs)

    def _autocast(self, device):
        import contextlib

        import torch

        if self.mixed_precision and device.startswith("cuda"):
            # fp16 (with a GradScaler in training): cuDNN's LSTM kernels support it on
            # every CUDA GPU, while bf16 RNN support depends on the cuDNN version.
            return torch.autocast("cuda", dtype=torch.float16), torch.float16
        return contextlib.nullcontext(), None

    def _train(self, seq, stat, y, seq_v, stat_v, y_v, device, rng, progress, should_stop, gini):
        import torch

        net = _build_net(self.n_channels_, self.n_static_ + 1, self.hidden_size, self.static_hidden,
                         self.num_layers, self.dropout).to(device)
        lr = self.learning_rate or 1e-3 * max(1.0, math.sqrt(self.batch_size / 1024))
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=self.weight_decay)
        _, amp_dtype = self._autocast(device)
        scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

        a, lens, s = self._tensors(seq, stat, device)
        validate = seq_v is not None
        if validate:
            av, lv, sv = self._tensors(seq_v, stat_v, device)
            yvt = torch.as_tensor(y_v / self.y_scale_, dtype=torch.float32).to(device)
            val_batches = self._batches(lv, None)
        yt = torch.as_tensor(y / self.y_scale_, dtype=torch.float32).to(device)
        lens_np = lens

        history: list[dict] = []
        best_loss, best_state, best_epoch, waited = math.inf, None, 0, 0
        cancelled = False
        started = time.perf_counter()
        for epoch in range(1, self.epochs + 1):
            net.train()
            total, count = 0.0, 0
            for idx in self._batches(lens_np, rng):
                if should_stop is not None and should_stop():
                    cancelled = True
                    break
                ctx, _ = self._autocast(device)
                with ctx:
                    out = self._forward(net, a, lens, s, idx, device)
                loss = ziln_loss(out, yt[torch.from_numpy(idx).to(yt.device)])
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                else:
                    loss.backward()
                if self.grad_clip:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), self.grad_clip)
                if scaler is not None:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                total += float(loss.detach()) * idx.size
                count += idx.size
            if cancelled and count == 0 and best_state is not None:
                break
            if validate:
                val_loss, val_ev = self._evaluate(net, av, lv, sv, yvt, val_batches, device)
                val_metric = gini(y_v, val_ev) if (y_v > 0).any() else float("nan")
            else:  # no validation: the last epoch is kept
                val_loss, val_metric = -float(epoch), float("nan")
            elapsed = time.perf_counter() - started
            row = {
                "epoch": epoch,
                "epochs": self.epochs,
                "train_loss": total / max(count, 1),
                "val_loss": val_loss,
                "val_metric": val_metric,
                "elapsed_s": elapsed,
                "eta_s": elapsed / epoch * (self.epochs - epoch),
            }
            if not validate:
                row["val_loss"] = float("nan")
            history.append(row)
            if val_loss < best_loss - 1e-6 or best_state is None:
                best_loss, best_epoch, waited = val_loss, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                waited += 1
            if progress is not None:
                progress(dict(row))
            if cancelled or waited >= self.patience:
                break
        net.load_state_dict(best_state)
        net.eval()
        self.net_ = net
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.best_val_loss_ = best_loss if validate else float("nan")
        self.cancelled_ = cancelled
        self.fit_seconds_ = time.perf_counter() - started
        self.lr_ = lr

    def _evaluate(self, net, a, lens, s, y, batches, device):
        """(mean ZILN loss, expected values in original units) over a prepared set."""
        import torch

        net.eval()
        losses, outs = 0.0, torch.empty((a.shape[0], 3), dtype=torch.float32, device=y.device)
        with torch.inference_mode():
            for idx in batches:
                ctx, _ = self._autocast(device)
                with ctx:
                    out = self._forward(net, a, lens, s, idx, device).float()
                it = torch.from_numpy(idx).to(y.device)
                outs[it] = out
                if y is not None:
                    losses += float(ziln_loss(out, y[it])) * idx.size
        net.train()
        _, ev = ziln_expected_value(outs)
        return losses / a.shape[0], ev.cpu().numpy().astype(np.float64) * self.y_scale_

    # -- prediction -----------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "net_"):
            raise NotFittedError("this LSTMValueModel is not fitted yet; call fit first")

    def _raw(self, X_seq, X_static, device: str | None = None):
        import torch

        self._check_fitted()
        seq, stat = self._check_inputs(X_seq, X_static, self.n_channels_, self.n_static_)
        if seq.shape[1] != self.n_periods_:
            raise ValueError(f"sequences have {seq.shape[1]} periods; the model was fitted on {self.n_periods_}")
        device = pick_device(device or self.device_)
        net = self.net_.to(device)
        a, lens, s = self._tensors(seq, stat, device)
        outs = torch.empty((seq.shape[0], 3), dtype=torch.float32)
        threads_before = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        try:
            with torch.inference_mode():
                for idx in self._batches(lens, None):
                    ctx, _ = self._autocast(device)
                    with ctx:
                        out = self._forward(net, a, lens, s, idx, device)
                    outs[torch.from_numpy(idx)] = out.float().cpu()
        finally:
            torch.set_num_threads(threads_before)
        return outs

    def predict_proba(self, X_seq, X_static=None) -> np.ndarray:
        """Probability of purchasing in the holdout."""
        import torch

        return torch.sigmoid(self._raw(X_seq, X_static)[:, 0]).numpy().astype(np.float64)

    def predict_churn(self, X_seq, X_static=None) -> np.ndarray:
        """Probability of no purchase in the holdout."""
        return 1.0 - self.predict_proba(X_seq, X_static)

    def predict_value(self, X_seq, X_static=None) -> np.ndarray:
        """Expected holdout value ``p * exp(mu + sigma^2 / 2)`` in the input's units."""
        _, ev = ziln_expected_value(self._raw(X_seq, X_static))
        return ev.numpy().astype(np.float64) * self.y_scale_

    def predict(self, X_seq, X_static=None) -> np.ndarray:
        """Alias of :meth:`predict_value`."""
        return self.predict_value(X_seq, X_static)

    # -- persistence ---------------------------------------------------------------------
    def to_files(self) -> dict[str, bytes]:
        """The saved model as file name -> bytes (``weights.pt``, a torch state_dict, and
        ``model.json``), made in memory: what :meth:`save` writes, and what a warehouse keeps."""
        import io

        import torch

        self._check_fitted()
        state = {k: v.detach().cpu() for k, v in self.net_.state_dict().items()}
        weights = io.BytesIO()
        torch.save(state, weights)
        meta = {
            "kind": "lstm",
            "params": self.get_params(),
            "n_periods": self.n_periods_,
            "n_channels": self.n_channels_,
            "n_static": self.n_static_,
            "seq_scale": self.seq_scale_.tolist(),
            "static_mean": self.static_mean_.tolist(),
            "static_std": self.static_std_.tolist(),
            "y_scale": self.y_scale_,
            "device": self.device_,
            "best_epoch": self.best_epoch_,
            "best_val_loss": self.best_val_loss_,
            "fit_seconds": self.fit_seconds_,
            "history": self.history_,
        }
        return {"weights.pt": weights.getvalue(),
                "model.json": json.dumps(meta, indent=2, allow_nan=True).encode("utf-8")}

    def save(self, path) -> None:
        """Write ``weights.pt`` (a torch state_dict) and ``model.json``
        (hyperparameters, scalers, shapes) into the folder ``path``."""
        files = self.to_files()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (path / name).write_bytes(data)

    @classmethod
    def load(cls, path, device: str | None = None) -> "LSTMValueModel":
        """Load a model saved by :meth:`save`, onto ``device`` (default: 'auto')."""
        path = Path(path)
        if not (path / "model.json").exists() or not (path / "weights.pt").exists():
            raise ValueError(f"no saved LSTM model in {path}")
        return cls.from_files({n: (path / n).read_bytes() for n in ("model.json", "weights.pt")}, device=device)

    @classmethod
    def from_files(cls, files: dict[str, bytes], device: str | None = None) -> "LSTMValueModel":
        """A model from :meth:`to_files`' file name -> bytes (read in memory, nothing written), onto
        ``device`` (default: 'auto')."""
        import io

        import torch

        if "model.json" not in files or "weights.pt" not in files:
            raise ValueError("no saved LSTM model in these files")
        meta = json.loads(bytes(files["model.json"]).decode("utf-8"))
        model = cls(**meta["params"])
        model.n_periods_ = meta["n_periods"]
        model.n_channels_ = meta["n_channels"]
        model.n_static_ = meta["n_static"]
        model.seq_scale_ = np.asarray(meta["seq_scale"], dtype=np.float32)
        model.static_mean_ = np.asarray(meta["static_mean"], dtype=np.float32)
        model.static_std_ = np.asarray(meta["static_std"], dtype=np.float32)
        model.y_scale_ = float(meta["y_scale"])
        model.best_epoch_ = meta["best_epoch"]
        model.best_val_loss_ = meta["best_val_loss"]
        model.fit_seconds_ = meta["fit_seconds"]
        model.history_ = meta["history"]
        model.cancelled_ = False
        model.device_ = pick_device(device or "auto")
        net = _build_net(model.n_channels_, model.n_static_ + 1, model.hidden_size, model.static_hidden,
                         model.num_layers, model.dropout)
        state = torch.load(io.BytesIO(bytes(files["weights.pt"])), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.eval()
        model.net_ = net.to(model.device_)
        return model
