"""Nystrom self-attention (Xiong et al., AAAI 2021), the attention CMTA uses for bags of tiles.

Exact softmax attention over M tiles costs O(M^2) memory; a WSI bag has thousands of tiles.
Nystrom attention picks m landmarks (means of contiguous segments of queries and keys) and
approximates softmax(Q K^T) V by

    softmax(Q K~^T) @ pinv(softmax(Q~ K~^T)) @ (softmax(Q~ K^T) V)

which is O(M m). The pseudo-inverse is the iterative Moore-Penrose scheme of the paper
(Razavi et al. 2014), 6 iterations as in CMTA, so no SVD is needed on the GPU.

Two deliberate differences from the widely used reference implementation:

* Landmarks are means over segments of *real* tokens. The reference front-pads the sequence
  with zero vectors to a multiple of m and lets those zeros take part in every softmax; for
  the genomics encoder (7 tokens, 128 landmarks) that dilutes attention with 121 null keys.
  Here a sequence shorter than m uses every token as its own landmark, so the approximation
  becomes exact attention (up to the pseudo-inverse's accuracy), and longer sequences are split
  into m segments whose sizes differ by at most one.
* The pseudo-inverse's starting point is scaled per matrix rather than by the batch-wide
  maximum, which keeps every head in the iteration's convergence region.

The residual depthwise convolution on the values (kernel 33 along the sequence, one filter per
head) and the parameter layout (qkv without bias, output Linear with bias) follow the reference,
so parameter counts match it exactly.
"""

from __future__ import annotations

import torch
from torch import nn


def segment_means(x: torch.Tensor, segments: int) -> torch.Tensor:
    """Means of ``segments`` contiguous, near-equal slices along dim -2 of ``[..., n, d]``.

    Token i goes to segment floor(i * m / n), so segment sizes are floor(n/m) or ceil(n/m) and
    no padding token ever enters a mean. ``segments`` must be between 1 and n.
    """
    n = x.shape[-2]
    if not 1 <= segments <= n:
        raise ValueError(f"segments must be in [1, {n}], got {segments}")
    if n % segments == 0:
        return x.unflatten(-2, (segments, n // segments)).mean(dim=-2)
    ids = torch.arange(n, device=x.device) * segments // n
    sums = torch.zeros(*x.shape[:-2], segments, x.shape[-1], dtype=x.dtype, device=x.device)
    sums = sums.index_add(-2, ids, x)
    counts = torch.bincount(ids, minlength=segments).to(x.dtype)
    return sums / counts.unsqueeze(-1)


def iterative_pinv(a: torch.Tensor, iterations: int = 6) -> torch.Tensor:
    """Moore-Penrose pseudo-inverse of the square matrices in ``a`` by Razavi's iteration.

    Z_0 = A^T / (||A||_1 ||A||_inf) guarantees convergence; each step is
    Z <- 1/4 Z (13 I - A Z (15 I - A Z (7 I - A Z))).
    """
    abs_a = a.abs()
    max_row_sum = abs_a.sum(dim=-1).amax(dim=-1, keepdim=True).unsqueeze(-1)
    max_col_sum = abs_a.sum(dim=-2).amax(dim=-1, keepdim=True).unsqueeze(-1)
    z = a.transpose(-1, -2) / (max_row_sum * max_col_sum)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    for _ in range(iterations):
        az = a @ z
        z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))
    return z


class NystromAttention(nn.Module):
    """Multi-head Nystrom self-attention with a residual depthwise convolution on the values."""

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        dim_head: int | None = None,
        landmarks: int = 128,
        pinv_iterations: int = 6,
        residual: bool = True,
        residual_kernel: int = 33,
        dropout: float = 0.0,
        exact_short: bool = False,
    ):
        super().__init__()
        dim_head = dim_head if dim_head is not None else dim // heads
        if dim_head < 1:
            raise ValueError(f"dim {dim} is too small for {heads} heads")
        if landmarks < 1:
            raise ValueError(f"landmarks must be >= 1, got {landmarks}")
        inner = heads * dim_head
        self.heads = heads
        self.dim_head = dim_head
        self.landmarks = landmarks
        self.pinv_iterations = pinv_iterations
        self.exact_short = exact_short
        self.scale = dim_head**-0.5
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))
        self.res_conv: nn.Conv2d | None = None
        if residual:
            self.res_conv = nn.Conv2d(
                heads, heads, (residual_kernel, 1), padding=(residual_kernel // 2, 0),
                groups=heads, bias=False,
            )

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.dim_head).transpose(1, 2)  # [b, h, n, dh]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [batch, tokens, dim] -> [batch, tokens, dim]."""
        b, n, _ = x.shape
        q, k, v = (self._split_heads(t) for t in self.to_qkv(x).chunk(3, dim=-1))
        q = q * self.scale
        m = min(self.landmarks, n)
        if m == n and self.exact_short:
            # Every token is its own landmark, so the three kernels are one matrix A and the
            # Nystrom product A pinv(A) A V equals A V: skip the iterative pseudo-inverse.
            out = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
            return self._finish(out, v, b, n)
        q_land = segment_means(q, m)
        k_land = segment_means(k, m)
        kernel_1 = torch.softmax(q @ k_land.transpose(-1, -2), dim=-1)  # [b, h, n, m]
        kernel_2 = torch.softmax(q_land @ k_land.transpose(-1, -2), dim=-1)  # [b, h, m, m]
        kernel_3 = torch.softmax(q_land @ k.transpose(-1, -2), dim=-1)  # [b, h, m, n]
        out = (kernel_1 @ iterative_pinv(kernel_2, self.pinv_iterations)) @ (kernel_3 @ v)
        return self._finish(out, v, b, n)

    def _finish(self, out: torch.Tensor, v: torch.Tensor, b: int, n: int) -> torch.Tensor:
        """Residual conv on the values, merge the heads, output projection."""
        if self.res_conv is not None:
            out = out + self.res_conv(v)
        out = out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.to_out(out)


class NystromLayer(nn.Module):
    """Pre-LN residual attention layer without an MLP: x + Attn(LN(x)), as in TransMIL/CMTA."""

    def __init__(self, dim: int, **attention: object):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = NystromAttention(dim, **attention)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(self.norm(x))
