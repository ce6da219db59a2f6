"""Golden files for the stage-2 models (3D-VAE, 3-D PatchGAN, LPIPS), written from REFERENCE_SPEC §4.

Our own small PyTorch re-implementation with the reference's parameter names (state-dict keys), built in
tiny configurations with a fixed seed. Writes tests/fixtures/golden/vae/:
  vae_weights.pth, vae_*.npy            tiny VAE: input, posterior mean/logvar, reconstruction (mode),
                                         gradients wrt input and every parameter for a fixed upstream
  disc_weights.pth, disc_*.npy          tiny discriminator, train mode (BatchNorm batch stats) and eval
  lpips_weights.pth, lpips_*.npy        reduced-channel LPIPS (random VGG-like weights), eval mode
Run: /usr/bin/python3 tools/torch_oracle/vae.py   (torch 1.13 CPU; float64 math, float32 files)
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from randomize import assert_no_constants, randomize_constants

OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'fixtures', 'golden', 'vae')

# The tiny configurations; the TypeScript tests build the same ones (VAE_CONFIGS.tiny etc.).
VAE_TINY = dict(ch=8, ch_mult=[1, 2], enc_blocks=1, dec_blocks=2, z_channels=4, embed_dim=4, in_channels=1,
                out_ch=1, groups=4, heads=4, temb_ch=16, attn_levels=[1])
VAE_INPUT = (1, 1, 4, 16, 16)
DISC_TINY = dict(in_channels=1, ndf=4)
DISC_INPUT = (2, 1, 4, 32, 32)
LPIPS_TINY = dict(channels=[4, 8, 8, 8, 8])
LPIPS_INPUT = (1, 1, 2, 16, 16)


def norm(c, groups):
    return nn.GroupNorm(groups, c, eps=1e-6, affine=True)


class ResnetBlock3D(nn.Module):
    def __init__(self, cin, cout, cfg):
        super().__init__()
        g = cfg['groups']
        self.norm1 = norm(cin, g)
        self.conv1 = nn.Conv3d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(cfg['temb_ch'], cout)  # never used (temb is None), kept for the keys
        self.norm2 = norm(cout, g)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv3d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if hasattr(self, 'nin_shortcut'):
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock3D(nn.Module):
    def __init__(self, c, cfg):
        super().__init__()
        self.heads = cfg['heads']
        self.norm = norm(c, cfg['groups'])
        self.q = nn.Conv3d(c, c, 1)
        self.k = nn.Conv3d(c, c, 1)
        self.v = nn.Conv3d(c, c, 1)
        self.proj_out = nn.Conv3d(c, c, 1)

    def forward(self, x):
        b, c, t, hh, ww = x.shape
        n, d = t * hh * ww, c // self.heads
        h = self.norm(x)
        # Channel c = head·d + j (b (h d) t y x → b h (t y x) d).
        split = lambda y: y.reshape(b, self.heads, d, n).transpose(2, 3)
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        a = torch.softmax(q @ k.transpose(2, 3) * d ** -0.5, dim=-1) @ v
        return x + self.proj_out(a.transpose(2, 3).reshape(b, c, t, hh, ww))


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv3d(c, c, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv3d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=(1, 2, 2), mode='nearest'))


class Level(nn.Module):
    pass


class Mid(nn.Module):
    def __init__(self, c, cfg):
        super().__init__()
        self.block_1 = ResnetBlock3D(c, c, cfg)
        self.attn_1 = AttnBlock3D(c, cfg)
        self.block_2 = ResnetBlock3D(c, c, cfg)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder3D(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, mult = cfg['ch'], cfg['ch_mult']
        self.conv_in = nn.Conv3d(cfg['in_channels'], ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin = ch
        for i, m in enumerate(mult):
            lvl = Level()
            lvl.block, lvl.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg['enc_blocks']):
                lvl.block.append(ResnetBlock3D(cin, ch * m, cfg))
                cin = ch * m
                if i in cfg['attn_levels']:
                    lvl.attn.append(AttnBlock3D(cin, cfg))
            if i != len(mult) - 1:
                lvl.downsample = Downsample(cin)
            self.down.append(lvl)
        self.mid = Mid(cin, cfg)
        self.norm_out = norm(cin, cfg['groups'])
        self.conv_out = nn.Conv3d(cin, 2 * cfg['z_channels'], 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for lvl in self.down:
            for j, blk in enumerate(lvl.block):
                h = blk(h)
                if len(lvl.attn):
                    h = lvl.attn[j](h)
            if hasattr(lvl, 'downsample'):
                h = lvl.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder3D(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, mult = cfg['ch'], cfg['ch_mult']
        cin = ch * mult[-1]
        self.conv_in = nn.Conv3d(cfg['z_channels'], cin, 3, padding=1)
        self.mid = Mid(cin, cfg)
        ups = []
        for i in reversed(range(len(mult))):
            lvl = Level()
            lvl.block, lvl.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg['dec_blocks']):
                lvl.block.append(ResnetBlock3D(cin, ch * mult[i], cfg))
                cin = ch * mult[i]
                if i in cfg['attn_levels']:
                    lvl.attn.append(AttnBlock3D(cin, cfg))
            if i != 0:
                lvl.upsample = Upsample(cin)
            ups.insert(0, lvl)  # up.i is resolution level i, as the reference stores it
        self.up = nn.ModuleList(ups)
        self.norm_out = norm(cin, cfg['groups'])
        self.conv_out = nn.Conv3d(cin, cfg['out_ch'], 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for lvl in reversed(self.up):
            for j, blk in enumerate(lvl.block):
                h = blk(h)
                if len(lvl.attn):
                    h = lvl.attn[j](h)
            if hasattr(lvl, 'upsample'):
                h = lvl.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VAE3d(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.encoder_3d = Encoder3D(cfg)
        self.decoder = Decoder3D(cfg)
        self.quant_conv = nn.Conv3d(2 * cfg['z_channels'], 2 * cfg['embed_dim'], 1)
        self.post_quant_conv = nn.Conv3d(cfg['embed_dim'], cfg['z_channels'], 1)

    def encode(self, x):
        mean, logvar = torch.chunk(self.quant_conv(self.encoder_3d(x)), 2, dim=1)
        return mean, torch.clamp(logvar, -30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


class PatchGan3d(nn.Module):
    """REFERENCE_SPEC §4.8 table; nn.Sequential indices main.0 … main.11."""

    def __init__(self, in_channels, ndf):
        super().__init__()
        lrelu = lambda: nn.LeakyReLU(0.2, True)
        self.main = nn.Sequential(
            nn.Conv3d(in_channels, ndf, 4, 2, 1), lrelu(),
            nn.Conv3d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm3d(ndf * 2), lrelu(),
            nn.Conv3d(ndf * 2, ndf * 4, (3, 4, 4), 2, 1, bias=False), nn.BatchNorm3d(ndf * 4), lrelu(),
            nn.Conv3d(ndf * 4, ndf * 8, (1, 4, 4), 1, (0, 1, 1), bias=False), nn.BatchNorm3d(ndf * 8), lrelu(),
            nn.Conv3d(ndf * 8, 1, (1, 4, 4), 1, (0, 1, 1)))
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.main(x)


class ScalingLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('shift', torch.tensor([-.030, -.088, -.188])[None, :, None, None])
        self.register_buffer('scale', torch.tensor([.458, .448, .450])[None, :, None, None])

    def forward(self, x):
        return (x - self.shift) / self.scale


class Vgg16Features(nn.Module):
    """torchvision vgg16().features split into slice1..slice5 at relu1_2, 2_2, 3_3, 4_3, 5_3 (global indices)."""

    def __init__(self, channels):
        super().__init__()
        convs_per_slice = [2, 2, 3, 3, 3]
        idx, cin = 0, 3
        for s, (n, c) in enumerate(zip(convs_per_slice, channels)):
            sl = nn.Sequential()
            if s > 0:
                sl.add_module(str(idx), nn.MaxPool2d(2, 2)); idx += 1
            for _ in range(n):
                sl.add_module(str(idx), nn.Conv2d(cin, c, 3, padding=1)); idx += 1
                sl.add_module(str(idx), nn.ReLU(False)); idx += 1
                cin = c
            setattr(self, f'slice{s + 1}', sl)

    def forward(self, x):
        taps = []
        for s in range(5):
            x = getattr(self, f'slice{s + 1}')(x)
            taps.append(x)
        return taps


class NetLinLayer(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(cin, 1, 1, bias=False))


class Lpips(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.scaling_layer = ScalingLayer()
        self.net = Vgg16Features(channels)
        for i, c in enumerate(channels):
            setattr(self, f'lin{i}', NetLinLayer(c))

    def forward(self, a, b):
        fa, fb = self.net(self.scaling_layer(a)), self.net(self.scaling_layer(b))
        val = 0
        for i in range(5):
            na = fa[i] / (torch.sqrt((fa[i] ** 2).sum(1, keepdim=True)) + 1e-10)
            nb = fb[i] / (torch.sqrt((fb[i] ** 2).sum(1, keepdim=True)) + 1e-10)
            val = val + getattr(self, f'lin{i}').model((na - nb) ** 2).mean([2, 3], keepdim=True)
        return val

    def video(self, a, b):
        """(B,1,T,H,W) pairs → per-frame LPIPS (B,1,T,1,1)."""
        B, C, T, H, W = a.shape
        flat = lambda v: v.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)
        return self.forward(flat(a), flat(b)).reshape(B, T, 1, 1, 1).permute(0, 2, 1, 3, 4)


def save(name, t):
    np.save(os.path.join(OUT, name + '.npy'), t.detach().to(torch.float32).numpy())


def save_weights(name, model):
    # float32 on disk, like the reference checkpoints; the math below runs in float64.
    torch.save({k: v.detach().to(torch.float32).clone() for k, v in model.state_dict().items()}, os.path.join(OUT, name))


def perturb_norms(model, gen):
    """Non-trivial affine norm parameters, so the test sees them used."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.GroupNorm):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def upstream(shape, gen):
    return torch.randn(shape, generator=gen, dtype=torch.float64)


def round_to_f32(model):
    """The TS side loads float32 weights: make the float64 oracle use exactly those values."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float32).to(torch.float64))


def vae_golden():
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(11)
    model = VAE3d(VAE_TINY)
    perturb_norms(model, gen)
    print('vae: randomized constant parameters', randomize_constants(model, gen))
    assert_no_constants(model)
    save_weights('vae_weights.pth', model)
    model = model.double()
    round_to_f32(model)
    x = (torch.rand(VAE_INPUT, generator=gen, dtype=torch.float64) * 2 - 1).float().double().requires_grad_(True)
    mean, logvar = model.encode(x)
    rec = model.decode(mean)
    w_rec, w_mean, w_logvar = upstream(rec.shape, gen).float().double(), upstream(mean.shape, gen).float().double(), upstream(logvar.shape, gen).float().double()
    loss = (rec * w_rec).sum() + (mean * w_mean).sum() + (logvar * w_logvar).sum()
    loss.backward()
    for name, t in [('vae_input', x), ('vae_mean', mean), ('vae_logvar', logvar), ('vae_rec', rec),
                    ('vae_w_rec', w_rec), ('vae_w_mean', w_mean), ('vae_w_logvar', w_logvar), ('vae_grad_input', x.grad)]:
        save(name, t)
    grads = {}
    for k, p in model.named_parameters():
        if p.grad is not None:
            grads[k] = p.grad.to(torch.float32).clone()
        else:
            assert 'temb_proj' in k, k
    torch.save(grads, os.path.join(OUT, 'vae_param_grads.pth'))
    print('vae params', sum(p.numel() for p in model.parameters()), 'rec', tuple(rec.shape))


def disc_golden():
    torch.manual_seed(2)
    gen = torch.Generator().manual_seed(12)
    model = PatchGan3d(**DISC_TINY)
    # BN bias (zeros) and running statistics (0 / 1) random: eval mode must read the loaded statistics.
    print('disc: randomized constant parameters', randomize_constants(model, gen))
    assert_no_constants(model)
    save_weights('disc_weights.pth', model)
    model = model.double()
    round_to_f32(model)
    x = (torch.rand(DISC_INPUT, generator=gen, dtype=torch.float64) * 2 - 1).float().double().requires_grad_(True)
    model.train()
    y = model(x)
    w = upstream(y.shape, gen).float().double()
    (y * w).sum().backward()
    save('disc_input', x); save('disc_train_out', y); save('disc_w', w); save('disc_grad_input', x.grad)
    torch.save({k: p.grad.to(torch.float32).clone() for k, p in model.named_parameters()}, os.path.join(OUT, 'disc_param_grads.pth'))
    # Running statistics after one train step, then eval mode with them.
    torch.save({k: v.to(torch.float32).clone() for k, v in model.state_dict().items() if 'running' in k or 'num_batches' in k},
               os.path.join(OUT, 'disc_running_after_train.pth'))
    model.eval()
    with torch.no_grad():
        save('disc_eval_out', model(x))
    print('disc params', sum(p.numel() for p in model.parameters()), 'logits', tuple(y.shape))


def lpips_golden():
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(13)
    model = Lpips(**LPIPS_TINY)
    with torch.no_grad():  # VGG-like random weights with positive lin heads (as the trained heads are)
        for i in range(5):
            getattr(model, f'lin{i}').model[1].weight.uniform_(0.0, 1.0, generator=gen)
    print('lpips: randomized constant parameters', randomize_constants(model, gen))
    assert_no_constants(model)
    save_weights('lpips_weights.pth', model)
    model = model.double().eval()
    round_to_f32(model)
    for p in model.parameters():
        p.requires_grad_(False)
    a = (torch.rand(LPIPS_INPUT, generator=gen, dtype=torch.float64) * 2 - 1).float().double().requires_grad_(True)
    b = (torch.rand(LPIPS_INPUT, generator=gen, dtype=torch.float64) * 2 - 1).float().double()
    y = model.video(a, b)
    w = upstream(y.shape, gen).float().double()
    (y * w).sum().backward()
    save('lpips_input', a); save('lpips_target', b); save('lpips_out', y); save('lpips_w', w); save('lpips_grad_input', a.grad)
    print('lpips params', sum(p.numel() for p in model.parameters()), 'out', y.flatten().tolist())


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    torch.set_grad_enabled(True)
    vae_golden()
    disc_golden()
    lpips_golden()
