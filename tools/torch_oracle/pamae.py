"""Golden files for the PA-MAE (REFERENCE_SPEC §3), written from the spec in PyTorch.

Builds the `tiny` config (narrow layers, 12 x 400 ECGs) with a fixed seed and writes to
tests/fixtures/golden/pamae/:
  weights.pth                 {'model_state_dict': {encoder.*, decoder.*}} as the reference checkpoint
  ecg.npy, phase_target.npy, keep_mask.npy, token_weight.npy     inputs
  {train,eval}_features.npy, _phase.npy, _recon.npy, _tokens.npy, _losses.npy ([total, recon, phase])
  {train,eval}_grad_ecg.npy   gradient of  total + sum(tokens * token_weight)  w.r.t. the ECG
  {train,eval}_grad_params.npy   the parameter gradients, flattened in named_parameters() order
  train_running_stats.npy     every BN running_mean, running_var (named_buffers order) after one train forward
  windows.npy                 the cycle windows [start, end] the faithful rule picks from the train-mode phase
  token_windows.npy           the (different, per-sample) windows the tokens are cropped with, so the
                              ROI align is checked on windows other than the random model's fallback

Run with Debian's torch:  /usr/bin/python3 tools/torch_oracle/pamae.py
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from randomize import assert_no_constants, randomize_constants

OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'fixtures', 'golden', 'pamae')

TINY = dict(
    in_channels=12, stem_channels=8, layer_channels=[8, 16, 16, 24], layer_strides=[1, 2, 1, 1], blocks=2,
    feature_dim=32, phase_hidden=16, token_steps=50,
    proj_channels=24, up_channels=[16, 8, 8], out_channels=12, ecg_length=400,
)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))

    def forward(self, x):
        h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(h + (x if self.downsample is None else self.downsample(x)))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(c['in_channels'], c['stem_channels'], 7, 2, 3, bias=False), nn.BatchNorm1d(c['stem_channels']),
            nn.ReLU(), nn.MaxPool1d(3, 2, 1))
        cin = c['stem_channels']
        for i, (cout, s) in enumerate(zip(c['layer_channels'], c['layer_strides'])):
            blocks = []
            for b in range(c['blocks']):
                blocks.append(BasicBlock(cin, cout, s if b == 0 else 1))
                cin = cout
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.n_layers = len(c['layer_channels'])
        self.feature_proj = nn.Conv1d(cin, c['feature_dim'], 1)
        self.phase_head = nn.Sequential(nn.Conv1d(cin, c['phase_hidden'], 1), nn.ReLU(), nn.Conv1d(c['phase_hidden'], 2, 1))

    def forward_raw(self, x):
        h = self.stem(x)
        for i in range(self.n_layers):
            h = getattr(self, f'layer{i + 1}')(h)
        return self.feature_proj(h), self.phase_head(h)


TOKEN_WINDOWS = [(3, 41), (10, 47)]


def select_window(phase_sample, steps):
    """Spec §2.5, faithful mode: atan2 wraps (drop > 3 rad), middle pair, fallbacks."""
    theta = np.arctan2(phase_sample[0].astype(np.float64), phase_sample[1].astype(np.float64))
    wraps = [i for i in range(steps - 1) if theta[i + 1] - theta[i] < -3.0]
    if len(wraps) < 2:
        return steps // 3, (2 * steps) // 3
    m = len(wraps) // 2
    s, e = wraps[m - 1] + 1, wraps[m] + 1
    return (0, steps) if e - s < 10 else (s, e)


def align_tokens(features, windows, steps):
    crops = [F.interpolate(features[i:i + 1, :, s:e], size=steps, mode='linear', align_corners=False) for i, (s, e) in enumerate(windows)]
    return torch.cat(crops, 0).transpose(1, 2)


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.proj = nn.Conv1d(c['feature_dim'], c['proj_channels'], 1)
        cin = c['proj_channels']
        for i, cout in enumerate(c['up_channels']):
            setattr(self, f'up{i + 1}', nn.Sequential(
                nn.Upsample(scale_factor=2, mode='linear', align_corners=False),
                nn.Conv1d(cin, cout, 3, 1, 1), nn.BatchNorm1d(cout), nn.ReLU()))
            cin = cout
        self.n_ups = len(c['up_channels'])
        self.final_conv = nn.Conv1d(cin, c['out_channels'], 7, 1, 3)

    def forward(self, f):
        h = self.proj(f)
        for i in range(self.n_ups):
            h = getattr(self, f'up{i + 1}')(h)
        return self.final_conv(h)


class PaMae(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)


def save(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array, dtype=np.float32))


def run(model, mode, ecg0, target, keep, token_w, windows=None):
    model.train(mode == 'train')
    for p in model.parameters():
        p.grad = None
    ecg = ecg0.clone().requires_grad_(True)
    features, phase = model.encoder.forward_raw(ecg)
    recon = model.decoder(features * keep)
    rec_loss = F.mse_loss(recon, ecg)
    phase_loss = F.mse_loss(phase, target)
    total = 100 * rec_loss + 10 * phase_loss
    steps = features.shape[2]
    if windows is None:
        windows = [select_window(phase[i].detach().numpy(), steps) for i in range(phase.shape[0])]
    tokens = align_tokens(features, TOKEN_WINDOWS, TINY['token_steps'])
    (total + (tokens * token_w).sum()).backward()
    save(f'{mode}_features.npy', features.detach().numpy())
    save(f'{mode}_phase.npy', phase.detach().numpy())
    save(f'{mode}_recon.npy', recon.detach().numpy())
    save(f'{mode}_tokens.npy', tokens.detach().numpy())
    save(f'{mode}_losses.npy', np.array([total.item(), rec_loss.item(), phase_loss.item()]))
    save(f'{mode}_grad_ecg.npy', ecg.grad.numpy())
    save(f'{mode}_grad_params.npy', np.concatenate([p.grad.reshape(-1).numpy() for _, p in model.named_parameters()]))
    return windows


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(42)
    c = TINY
    model = PaMae(c)
    # Non-trivial BN affine parameters and running statistics, so eval mode differs from train mode.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    # Any other constant-initialised parameter (biases, norm affines) gets random values too.
    changed = randomize_constants(model, torch.Generator().manual_seed(4242))
    assert_no_constants(model)
    print('randomized constant parameters:', changed)
    torch.save({'model_state_dict': model.state_dict(), 'epoch': 3}, os.path.join(OUT, 'weights.pth'))

    b, length = 2, c['ecg_length']
    steps = length // 8
    # A smooth ECG-like input: a few harmonics per lead plus noise.
    t = torch.arange(length, dtype=torch.float32) / 500.0
    leads = [torch.sin(2 * math.pi * (1.1 + 0.1 * k) * t + k) + 0.3 * torch.sin(2 * math.pi * 7 * t + 0.5 * k) for k in range(c['in_channels'])]
    ecg = torch.stack(leads, 0).unsqueeze(0).repeat(b, 1, 1) + 0.2 * torch.randn(b, c['in_channels'], length)
    phi = (2 * math.pi * torch.arange(steps) / 17.0) % (2 * math.pi)
    target = torch.stack([torch.sin(phi), torch.cos(phi)], 0).unsqueeze(0).repeat(b, 1, 1)
    keep = (torch.rand(b, 1, steps) > 0.5).float()
    token_w = torch.randn(b, c['token_steps'], c['feature_dim'])
    save('ecg.npy', ecg.numpy())
    save('phase_target.npy', target.numpy())
    save('keep_mask.npy', keep.numpy())
    save('token_weight.npy', token_w.numpy())

    windows = run(model, 'train', ecg, target, keep, token_w)
    save('train_running_stats.npy', np.concatenate([t.reshape(-1).numpy() for n, t in model.named_buffers() if not n.endswith('num_batches_tracked')]))
    # Eval from the saved weights (running stats as in weights.pth), same windows for the tokens.
    model.load_state_dict(torch.load(os.path.join(OUT, 'weights.pth'))['model_state_dict'])
    run(model, 'eval', ecg, target, keep, token_w, windows)
    save('windows.npy', np.array(windows))
    save('token_windows.npy', np.array(TOKEN_WINDOWS))
    print('windows', windows, 'params', sum(p.numel() for p in model.parameters()))


if __name__ == '__main__':
    main()
