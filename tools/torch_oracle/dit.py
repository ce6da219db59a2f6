"""Golden files for the ECG_DiT port (tests/models/dit.test.ts), written from REFERENCE_SPEC §5.4.

A small PyTorch re-implementation with the reference's parameter names, built at the tiny config with a
fixed seed. The adaLN output layers are perturbed away from their zero init so that every modulation
path contributes, and every other constant-initialised parameter (the attention in_proj_bias and out_proj.bias,
zeros in PyTorch) gets random values (randomize.py): a bias read from the wrong slice must change the numbers. Writes to tests/fixtures/golden/dit/:
  weights.pth                    model.state_dict()
  x.npy, t.npy, ecg.npy          inputs (B=2; ECG token count 6 != frames 5)
  upstream.npy                   w of the loss sum(v * w)
  velocity.npy                   forward output
  grad_x.npy, grad_ecg.npy       input gradients of the loss
  grads/<key>.npy                parameter gradients of the loss
  guided.npy                     v_u + 2·(v_c − v_u), null condition = zero tokens
The model has no BatchNorm or dropout, so train and eval mode give the same numbers (one set of files).
Run with Debian's torch: /usr/bin/python3 tools/torch_oracle/dit.py
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn

from randomize import assert_no_constants, randomize_constants

TINY = dict(hidden=32, depth=2, heads=2, mlp_ratio=4.0, channels=4, size=(3, 4), frames=5, ecg_dim=24, freq_dim=64)
OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'fixtures', 'golden', 'dit')


def sinusoid(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimeEmbed(nn.Module):
    def __init__(self, hidden, freq_dim):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        return self.mlp(sinusoid(t, self.freq_dim))


def mod(x, shift, scale):
    return x * (1 + scale) + shift


class Block(nn.Module):
    def __init__(self, d, heads, mlp_ratio):
        super().__init__()
        self.attn_spatial = nn.MultiheadAttention(d, heads, batch_first=True)
        self.attn_temporal = nn.MultiheadAttention(d, heads, batch_first=True)
        self.attn_cross = nn.MultiheadAttention(d, heads, batch_first=True)
        hidden = int(d * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 12 * d))
        self.norm = lambda x: nn.functional.layer_norm(x, (d,), eps=1e-6)

    def forward(self, x, c, ecg):
        b, t, l, d = x.shape
        # chunk order spatial, temporal, cross, mlp — each (shift, scale, gate)
        s_sh, s_sc, s_g, t_sh, t_sc, t_g, c_sh, c_sc, c_g, m_sh, m_sc, m_g = self.adaLN_modulation(c).chunk(12, dim=1)
        per_row = lambda v, n: v.repeat_interleave(n, dim=0).unsqueeze(1)  # (B, D) -> (B*n, 1, D)

        xt = x.permute(0, 2, 1, 3).reshape(b * l, t, d)
        h = mod(self.norm(xt), per_row(t_sh, l), per_row(t_sc, l))
        xt = xt + per_row(t_g, l) * self.attn_temporal(h, h, h, need_weights=False)[0]

        kv = ecg.repeat_interleave(l, dim=0)  # literal per-location repeat, as the spec describes
        h = mod(self.norm(xt), per_row(c_sh, l), per_row(c_sc, l))
        xt = xt + per_row(c_g, l) * self.attn_cross(h, kv, kv, need_weights=False)[0]

        xs = xt.reshape(b, l, t, d).permute(0, 2, 1, 3).reshape(b * t, l, d)
        h = mod(self.norm(xs), per_row(s_sh, t), per_row(s_sc, t))
        xs = xs + per_row(s_g, t) * self.attn_spatial(h, h, h, need_weights=False)[0]

        x = xs.reshape(b, t, l, d)
        g = lambda v: v[:, None, None, :]
        return x + g(m_g) * self.mlp(mod(self.norm(x), g(m_sh), g(m_sc)))


class EcgDiT(nn.Module):
    def __init__(self, hidden, depth, heads, mlp_ratio, channels, size, frames, ecg_dim, freq_dim):
        super().__init__()
        self.size = size
        self.x_embedder = nn.Linear(channels, hidden)
        self.t_embedder = TimeEmbed(hidden, freq_dim)
        self.ecg_proj = nn.Linear(ecg_dim, hidden) if ecg_dim != hidden else nn.Identity()
        self.ecg_global_proj = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.pos_embed = nn.Parameter(torch.zeros(1, frames, size[0] * size[1], hidden))
        self.blocks = nn.ModuleList([Block(hidden, heads, mlp_ratio) for _ in range(depth)])
        self.final_adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.final_linear = nn.Linear(hidden, channels)
        self.hidden = hidden
        nn.init.normal_(self.pos_embed, std=0.02)
        for w in (self.x_embedder.weight, self.t_embedder.mlp[0].weight, self.t_embedder.mlp[2].weight):
            nn.init.normal_(w, std=0.02)
        for lin in [blk.adaLN_modulation[1] for blk in self.blocks] + [self.final_adaLN_modulation[1]]:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x, t, ecg_tokens):
        b, ch, frames, h, w = x.shape
        tok = self.x_embedder(x.permute(0, 2, 3, 4, 1).reshape(b, frames, h * w, ch)) + self.pos_embed
        ecg = self.ecg_proj(ecg_tokens)
        c = self.t_embedder(t) + self.ecg_global_proj(ecg.mean(dim=1))
        for blk in self.blocks:
            tok = blk(tok, c, ecg)
        shift, scale = self.final_adaLN_modulation(c).chunk(2, dim=1)
        tok = nn.functional.layer_norm(tok, (self.hidden,), eps=1e-6)
        out = self.final_linear(tok * (1 + scale[:, None, None, :]) + shift[:, None, None, :])
        return out.permute(0, 3, 1, 2).reshape(b, ch, frames, h, w)


def save(name, array):
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.ascontiguousarray(array.detach().numpy().astype(np.float32)))


def main():
    torch.manual_seed(1234)
    model = EcgDiT(**TINY)
    with torch.no_grad():
        # Non-zero adaLN outputs (zero init would make every block the identity and hide bugs); large
        # enough that gates and scales are O(0.1-1).
        for lin in [blk.adaLN_modulation[1] for blk in model.blocks] + [model.final_adaLN_modulation[1]]:
            lin.weight.normal_(0, 0.3)
            lin.bias.normal_(0, 0.3)
    # in_proj_bias is split into q / k / v slices (cross-attention: q and kv parts): random, so that each
    # slice differs from its neighbours.
    changed = randomize_constants(model, torch.Generator().manual_seed(4321), std=0.3)
    assert_no_constants(model)
    n_params = sum(p.numel() for p in model.parameters())
    b, (h, w), te = 2, TINY['size'], 6
    x = torch.randn(b, TINY['channels'], TINY['frames'], h, w, requires_grad=True)
    t = torch.tensor([0.23, 0.81])
    ecg = torch.randn(b, te, TINY['ecg_dim'], requires_grad=True)
    v = model(x, t, ecg)
    upstream = torch.randn_like(v)
    (v * upstream).sum().backward()

    os.makedirs(OUT, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(OUT, 'weights.pth'))
    for name, arr in [('x', x), ('t', t), ('ecg', ecg), ('upstream', upstream), ('velocity', v), ('grad_x', x.grad), ('grad_ecg', ecg.grad)]:
        save(f'{name}.npy', arr)
    for key, p in model.named_parameters():
        save(f'grads/{key}.npy', p.grad)
    with torch.no_grad():
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([torch.zeros_like(ecg), ecg]))
        guided = both[:b] + 2.0 * (both[b:] - both[:b])
    save('guided.npy', guided)
    print(f'randomized constant parameters: {changed}')
    print(f'tiny EcgDiT: {n_params} parameters; |v| max {v.abs().max():.3f}; files in {os.path.normpath(OUT)}')


if __name__ == '__main__':
    main()
