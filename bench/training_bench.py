"""Training-engine benchmark: the price of group objectives over accumulated micro-batches.

POMP-style training uses batch 1 with G-step accumulation and a contrastive loss over the G
accumulated patients. pmx offers two exact ways (docs/training.md): ``cache`` (two passes,
memory of one micro-batch) and ``retain`` (one pass, every graph kept). This measures, through
the real Trainer, the time per optimizer step of both and of one real batch of G, and the
activation memory each holds at once (CUDA: peak allocated; CPU: bytes autograd saves for
backward, measured with saved-tensor hooks).

    python bench/training_bench.py            # group 32, 4 blocks of width 256, 256 tokens
    python bench/training_bench.py --quick    # group 8, smaller model, about a minute
    python bench/training_bench.py --json     # last line: one JSON object
    python bench/training_bench.py --device cuda
    python bench/training_bench.py --threads 1   # on a shared machine (ratios use CPU seconds)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time

import torch
from torch import nn

from pmx.training import Callback, Trainer, TrainTask


class Bags(torch.utils.data.Dataset):
    def __init__(self, n: int, tokens: int, dim: int):
        gen = torch.Generator().manual_seed(0)
        self.image = torch.randn(n, tokens, dim, generator=gen)
        self.omics = torch.randn(n, 3, dim, generator=gen)

    def __len__(self) -> int:
        return len(self.image)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.image[i], "omics": self.omics[i]}


class Contrastive(TrainTask):
    """Two transformer branches -> CLS vectors -> CLIP loss over the whole group."""

    def __init__(self, dim: int, depth: int):
        super().__init__()
        layer = lambda: nn.TransformerEncoderLayer(dim, 4, 4 * dim, dropout=0.1, batch_first=True)  # noqa: E731
        self.image = nn.TransformerEncoder(layer(), depth)
        self.omics = nn.TransformerEncoder(layer(), max(1, depth // 2))
        self.logit_scale = nn.Parameter(torch.tensor(2.659))

    def features(self, batch):
        img = nn.functional.normalize(self.image(batch["image"]).mean(1), dim=-1)
        omx = nn.functional.normalize(self.omics(batch["omics"]).mean(1), dim=-1)
        return {"img": img, "omx": omx}

    def group_losses(self, f):
        logits = self.logit_scale.clamp(max=4.6052).exp() * f["img"] @ f["omx"].T
        target = torch.arange(len(logits), device=logits.device)
        return {"clip": (nn.functional.cross_entropy(logits, target)
                         + nn.functional.cross_entropy(logits.T, target)) / 2}


class StepTimer(Callback):
    """Wall seconds per optimizer step, and CPU seconds of this process (robust on a shared
    machine where wall time depends on other jobs)."""

    def __init__(self, device: torch.device):
        self.device, self.times, self.cpu, self.last = device, [], [], None

    def _now(self) -> tuple[float, float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter(), time.process_time()

    def on_fit_start(self, trainer):
        self.last = self._now()

    def on_step_end(self, trainer, losses):
        now = self._now()
        self.times.append(now[0] - self.last[0])
        self.cpu.append(now[1] - self.last[1])
        self.last = now


def saved_bytes(task: Contrastive, batch: dict[str, torch.Tensor]) -> int:
    """Bytes autograd keeps for backward during one forward of ``batch``."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        task.features(batch)
    return total


def run_mode(name: str, args, device: torch.device) -> dict:
    group = args.group
    batch, accum, mode = (group, 1, "retain") if name == "real-batch" else (1, group, name)
    torch.manual_seed(0)
    task = Contrastive(args.dim, args.depth)
    data = Bags(group * (args.steps + 1), args.tokens, args.dim)
    timer = StepTimer(device)
    config = dict(epochs=1, batch_size=batch, accumulation_steps=accum, group_mode=mode, lr=1e-4,
                  progress=False, precision="auto")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as run_dir:
        Trainer(task, config, run_dir=run_dir, device=device, callbacks=[timer]).fit(data)
    one = {k: v[:batch].to(device) for k, v in {"image": data.image, "omics": data.omics}.items()}
    held = saved_bytes(task, one) * (1 if mode == "cache" else (group if batch == 1 else 1))
    row = {"mode": name, "batch": batch, "accumulation": accum,
           "step_s": round(statistics.median(timer.times[1:]), 4),
           "step_cpu_s": round(statistics.median(timer.cpu[1:]), 4),
           "activation_mb": round(held / 2**20, 1)}
    if device.type == "cuda":
        row["peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--group", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    if args.quick:
        args.group, args.steps, args.dim, args.depth, args.tokens = 8, 6, 128, 2, 128
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = [run_mode(name, args, device) for name in ("real-batch", "retain", "cache")]
    key = "step_s" if device.type == "cuda" else "step_cpu_s"
    base = rows[0][key]
    for row in rows:
        row["time_vs_real_batch"] = round(row[key] / base, 2)
        if not args.json:
            print(f"{row['mode']:>10}: {row['step_s']:.3f} s/step wall, {row['step_cpu_s']:.3f} s CPU "
                  f"({row['time_vs_real_batch']}x the real batch), "
                  f"activations held {row['activation_mb']} MB"
                  + (f", peak {row['peak_allocated_mb']} MB" if "peak_allocated_mb" in row else ""))
    summary = {"bench": "training", "device": str(device), "machine": platform.machine(),
               "torch": torch.__version__, "threads": torch.get_num_threads(), "group": args.group,
               "dim": args.dim, "depth": args.depth, "tokens": args.tokens, "rows": rows}
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
