"""Fixtures for `npm run import` and `fromReferenceConfig` (tests/models/import.test.ts,
tests/models/reference-config.test.ts), written with torch in the reference's exact layouts.

tests/fixtures/weights/reference-shapes.json
    For several constructor-argument sets of the reference classes (reference_models.py): every
    state_dict() key with its shape, in state-dict order.
tests/fixtures/weights/import/  a tiny chain, every parameter and buffer randomised:
    checkpoint-best.pth         PA-MAE: {'epoch', 'model_state_dict': {encoder.*, decoder.*}, 'optimizer_state_dict', 'args', ...}
    vae-checkpoint-best.pth     VAE: {'epoch', 'model_state_dict': {encoder_3d.*, decoder.*, quant_conv.*, post_quant_conv.*, loss.*}, ...}
    checkpoint_flow_best.pth    flow: {'epoch', 'model_state_dict': DiT, 'encoder_state_dict': fine-tuned encoder, ...}
    anatomy_template.pt         bare tensor (1, C, 1, h, w) = mean of all_latents.pt over subjects and frames
    all_latents.pt              bare tensor (N, C, T, h, w)
    disentangle_vae3d.yaml      the reference YAML's layout with the tiny ddconfig
    partial-pamae.pth           the PA-MAE checkpoint without encoder.layer4.*
    mismatched-flow.pth         a flow checkpoint whose blocks.0.mlp.0 is 3x wide instead of 4x
    dataparallel-flow.pth       the DiT with DataParallel's module. prefixes and no encoder_state_dict
    wrong-template.pt           a (1, C, 1, h+1, w+1) template
    oracle.json                 the kwargs, and torch outputs for formula inputs (VAE decode, DiT velocity)
The VAE's values are multiples of 1/512 (random, but they compress in git: the VAE needs 32-channel
GroupNorms, so it is the largest file at ~3 MB).
Run: /usr/bin/python3 tools/torch_oracle/make_import_fixtures.py
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import reference_models as R  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'fixtures', 'weights')
OUT = os.path.join(ROOT, 'import')

PAMAE = dict(in_channels=12, base_filters=4, out_dim=16)
DD = dict(ch=32, ch_mult=[1, 1], num_res_blocks=1, attn_resolutions=[], dropout=0.0, in_channels=1, out_ch=1,
          resolution=8, z_channels=4, temp_res=3, f_t=0, use_3d_conv=True)
EMBED = 3
LOSS = dict(disc_start=10000, kl_weight=0.000001, disc_weight=0.5, disc_in_channels=1, disc_ch=4)
DIT = dict(input_size=4, num_frames=3, in_channels=EMBED, hidden_size=24, depth=1, num_heads=2, ecg_dim=16)

SHAPE_CASES = [
    ('ECGEncoder', {}),
    ('ECGEncoder', dict(in_channels=8, base_filters=16, out_dim=48, target_len=20)),
    ('ECGDecoder', dict(in_dim=40, out_channels=6, base_filters=8)),
    ('ECG_DiT', {}),
    ('ECG_DiT', dict(input_size=3, num_frames=5, in_channels=2, hidden_size=32, depth=2, num_heads=4, ecg_dim=32)),
    ('ECG_DiT', dict(input_size=2, num_frames=4, in_channels=4, hidden_size=16, depth=3, num_heads=2, ecg_dim=12)),
    ('NLayerDiscriminator3D', dict(input_nc=1, ndf=4)),
    ('NLayerDiscriminator3D', dict(input_nc=2, ndf=8, n_layers=2)),
    ('NLayerDiscriminator3D', dict(input_nc=1, ndf=4, n_layers=5)),
    ('VAE3d', dict(embed_dim=4, ddconfig=dict(ch=32, ch_mult=[1, 2, 2], num_res_blocks=1, z_channels=4, resolution=16, temp_res=2, attn_resolutions=[]),
                   lossconfig=dict(params=dict(disc_in_channels=1, disc_ch=4)))),
    ('VAE3d', dict(embed_dim=3, ddconfig=dict(ch=32, ch_mult=[2], num_res_blocks=2, z_channels=5, in_channels=2, out_ch=3, resolution=8, temp_res=2),
                   lossconfig=dict(params=dict(disc_in_channels=2, disc_ch=4, disc_num_layers=2)))),
    ('VAE3d', dict(embed_dim=4, ddconfig=dict(ch=32, ch_mult=[1, 1, 1, 1], num_res_blocks=1, z_channels=4, resolution=16, temp_res=2),
                   lossconfig=dict(params=dict(disc_in_channels=1, disc_ch=4)))),
]


def build(cls, kwargs):
    return getattr(R, cls)(**kwargs)


def randomise(module, gen, quantum=None):
    """Every parameter and buffer gets random values (BatchNorm variances stay positive)."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype == torch.int64:
                t.fill_(int(torch.randint(1, 1000, (), generator=gen)))
                continue
            if name.endswith('running_var'):
                v = 0.5 + torch.rand(t.shape, generator=gen)
            elif name.endswith('norm1.weight') or name.endswith('norm2.weight') or name.endswith('norm.weight') or name.endswith('norm_out.weight') or name.endswith('bn1.weight') or name.endswith('bn2.weight'):
                v = 1 + 0.2 * torch.randn(t.shape, generator=gen)
            else:
                fan_in = max(1, t[0].numel() if t.dim() > 1 else t.numel())
                v = torch.randn(t.shape, generator=gen) * min(0.5, 1.5 / math.sqrt(fan_in))
            if quantum:
                v = torch.round(v / quantum) * quantum
            t.copy_(v)


def formula(shape, a, b):
    n = math.prod(shape)
    return torch.tensor([math.sin(a * i + b) for i in range(n)], dtype=torch.float32).reshape(shape)


def shape_dump():
    cases = []
    for cls, kwargs in SHAPE_CASES:
        cases.append({'class': cls, 'kwargs': kwargs, 'state_dict': R.names_and_shapes(build(cls, kwargs))})
    with open(os.path.join(ROOT, 'reference-shapes.json'), 'w') as f:
        json.dump({'torch_version': torch.__version__, 'cases': cases}, f, separators=(',', ':'))
        f.write('\n')


def optimizer_state(module):
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)
    loss = sum((p.float() ** 2).sum() for p in module.parameters() if p.requires_grad)
    loss.backward()
    opt.step()
    return opt.state_dict()


def save(obj, name):
    torch.save(obj, os.path.join(OUT, name))


def write_yaml():
    lines = [
        'model:', '  params:', f'    embed_dim: {EMBED}  # Latent Channel', '    ', '    lossconfig:',
        '      target: ldm.modules.losses.contperceptual.LPIPSWithDiscriminator', '      params:',
    ]
    lines += [f'        {k}: {v}' for k, v in LOSS.items()]
    lines += ['        ', '    ddconfig:']
    for k, v in DD.items():
        text = '[' + ', '.join(str(x) for x in v) + ']' if isinstance(v, list) else ('True' if v is True else str(v))
        lines.append(f'      {k}: {text}' + ('  # levels' if k == 'ch_mult' else ''))
    with open(os.path.join(OUT, 'disentangle_vae3d.yaml'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main():
    parser = argparse.ArgumentParser()
    parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    shape_dump()
    gen = torch.Generator().manual_seed(20260601)

    pamae = R.PaMae(PAMAE['base_filters'], PAMAE['out_dim'], PAMAE['in_channels'])
    randomise(pamae, gen)
    args = argparse.Namespace(lr=1e-4, batch_size=32, mask_ratio=0.5, epochs=100)
    pamae_sd = pamae.state_dict()
    save({'epoch': 41, 'model_state_dict': pamae_sd, 'optimizer_state_dict': optimizer_state(pamae), 'val_loss': 0.0123, 'args': args}, 'checkpoint-best.pth')
    partial = {k: v for k, v in pamae_sd.items() if not k.startswith('encoder.layer4.')}
    save({'epoch': 41, 'model_state_dict': partial}, 'partial-pamae.pth')

    vae = R.VAE3d({'params': LOSS}, DD, EMBED)
    randomise(vae, gen, quantum=1 / 512)
    save({'epoch': 7, 'model_state_dict': vae.state_dict(), 'best_val': 0.25, 'global_step': 1234}, 'vae-checkpoint-best.pth')

    dit = R.ECG_DiT(**DIT)
    randomise(dit, gen)
    encoder = R.ECGEncoder(PAMAE['in_channels'], PAMAE['base_filters'], PAMAE['out_dim'], DIT['num_frames'])
    randomise(encoder, gen)
    save({'epoch': 9, 'model_state_dict': dit.state_dict(), 'encoder_state_dict': encoder.state_dict(), 'val_loss': 0.5}, 'checkpoint_flow_best.pth')
    wide = R.ECG_DiT(**DIT)
    wide.blocks[0].mlp[0] = torch.nn.Linear(DIT['hidden_size'], 3 * DIT['hidden_size'])
    wide.blocks[0].mlp[2] = torch.nn.Linear(3 * DIT['hidden_size'], DIT['hidden_size'])
    randomise(wide, gen)
    save({'epoch': 9, 'model_state_dict': wide.state_dict(), 'encoder_state_dict': encoder.state_dict()}, 'mismatched-flow.pth')
    # Saved from an nn.DataParallel wrapper (module. prefixes), without the fine-tuned encoder.
    save({'epoch': 9, 'model_state_dict': {f'module.{k}': v for k, v in dit.state_dict().items()}}, 'dataparallel-flow.pth')
    # A diverged run: one DiT weight is NaN; npm run import must refuse it, naming the file and the tensor.
    diverged = {f'module.{k}': v.clone() for k, v in dit.state_dict().items()}
    nan_key = next(k for k in diverged if k.endswith('.weight'))
    diverged[nan_key].view(-1)[3] = float('nan')
    save({'epoch': 9, 'model_state_dict': diverged}, 'diverged-flow.pth')

    levels = len(DD['ch_mult'])
    h = DD['resolution'] // 2 ** (levels - 1)
    latents = torch.randn((5, EMBED, DD['temp_res'], h, h), generator=gen)
    torch.save(latents, os.path.join(OUT, 'all_latents.pt'))
    template = latents.mean(dim=[0, 2], keepdim=True)
    torch.save(template, os.path.join(OUT, 'anatomy_template.pt'))
    torch.save(torch.randn((1, EMBED, 1, h + 1, h + 1), generator=gen), os.path.join(OUT, 'wrong-template.pt'))
    write_yaml()

    # Torch outputs of the models as loaded, for inputs both sides compute from the same formulas.
    with torch.no_grad():
        z = formula((1, EMBED, DD['temp_res'], h, h), 0.37, 0.1)
        decoded = vae.decoder(vae.post_quant_conv(z))
        x = formula((1, EMBED, DIT['num_frames'], h, h), 0.21, 0.3)
        tokens = formula((1, DIT['num_frames'], DIT['ecg_dim']), 0.13, 0.7)
        velocity = dit(x, torch.tensor([0.35]), tokens)
    oracle = {
        'torch_version': torch.__version__,
        'pamae': PAMAE, 'ddconfig': DD, 'embed_dim': EMBED, 'lossconfig': LOSS, 'dit': DIT,
        'template_shape': list(template.shape), 'latents_shape': list(latents.shape),
        'template': template.flatten().tolist(),
        'vae_decode': {'z': [0.37, 0.1], 'shape': list(decoded.shape), 'values': decoded.flatten().tolist()},
        'dit_velocity': {'x': [0.21, 0.3], 'tokens': [0.13, 0.7], 't': 0.35, 'shape': list(velocity.shape), 'values': velocity.flatten().tolist()},
    }
    with open(os.path.join(OUT, 'oracle.json'), 'w') as f:
        json.dump(oracle, f, indent=None, separators=(',', ':'))
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}', file=sys.stderr)


if __name__ == '__main__':
    main()
