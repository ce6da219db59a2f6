#!/usr/bin/env python3
"""Writes the small torch.save / safetensors fixtures that tests/models/io.test.ts reads.

Run with a python that has torch (Debian: apt-get install python3-torch; then /usr/bin/python3):
    /usr/bin/python3 tools/torch_oracle/make_io_fixtures.py
The outputs are committed, so the TypeScript tests never need torch. expected.json records, for
every fixture, the keys, dtypes, shapes and values (all values for small tensors, the first few
plus the sum for larger ones) as torch sees them.
"""
import argparse
import json
import os
import struct
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests', 'fixtures', 'weights')
FULL_VALUES_UP_TO = 64

DTYPE_NAMES = {
    torch.float32: 'f32', torch.float16: 'f16', torch.bfloat16: 'bf16', torch.float64: 'f64',
    torch.int64: 'i64', torch.int32: 'i32', torch.int16: 'i16', torch.int8: 'i8', torch.uint8: 'u8', torch.bool: 'bool',
}


def json_float(v):
    # JSON has no inf/nan; the TS test maps these strings back.
    if v != v:
        return 'nan'
    if v in (float('inf'), float('-inf')):
        return 'inf' if v > 0 else '-inf'
    return float(v)


def describe_tensor(t):
    flat = t.detach().reshape(-1)
    as_float = flat.double() if t.dtype != torch.bool else flat.to(torch.int64).double()
    record = {'dtype': DTYPE_NAMES[t.dtype], 'shape': list(t.shape), 'contiguous': t.is_contiguous()}
    if flat.numel() <= FULL_VALUES_UP_TO:
        # f16/bf16 values are exactly representable in f32, so the TS side can compare exactly.
        record['values'] = [json_float(v) for v in as_float.tolist()]
    else:
        record['first'] = [json_float(v) for v in as_float[:8].tolist()]
        record['sum'] = float(as_float.sum().item())
    return record


def describe_value(v):
    """Non-tensor entries, in the JSON shape the TS reader is expected to produce."""
    if isinstance(v, torch.Tensor):
        return {'tensor': describe_tensor(v)}
    if isinstance(v, dict):
        return {'dict': {str(k): describe_value(x) for k, x in v.items()}}
    if isinstance(v, argparse.Namespace):
        return {'object': 'argparse.Namespace', 'attributes': {k: describe_value(x) for k, x in vars(v).items()}}
    if isinstance(v, (list, tuple)):
        return {'list' if isinstance(v, list) else 'tuple': [describe_value(x) for x in v]}
    if isinstance(v, np.generic):
        return {'value': v.item()}
    return {'value': v}


def tiny_model():
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict([
        ('conv', nn.Conv1d(2, 3, kernel_size=3, bias=False)),
        ('bn', nn.BatchNorm1d(3)),
        ('relu', nn.ReLU()),
        ('pool', nn.AdaptiveAvgPool1d(1)),
        ('flatten', nn.Flatten()),
        ('fc', nn.Linear(3, 2)),
    ]))
    # One training-mode forward moves the BatchNorm running stats off their defaults and sets
    # num_batches_tracked (an int64 buffer) to 1.
    model.train()
    model(torch.randn(4, 2, 8))
    return model


def save(obj, name, **kwargs):
    path = os.path.join(OUT, name)
    torch.save(obj, path, **kwargs)
    return path


def write_reference_safetensors(path, tensors, metadata):
    """Independent Python writer following the safetensors spec (no safetensors package here)."""
    order = ['I64', 'F64', 'F32', 'I32', 'BF16', 'F16', 'I16', 'I8', 'U8', 'BOOL']
    names = {'f32': 'F32', 'f16': 'F16', 'bf16': 'BF16', 'f64': 'F64', 'i64': 'I64', 'i32': 'I32', 'i16': 'I16', 'i8': 'I8', 'u8': 'U8', 'bool': 'BOOL'}
    items = sorted(tensors.items(), key=lambda kv: (order.index(names[DTYPE_NAMES[kv[1].dtype]]), kv[0]))
    header, blobs, offset = {'__metadata__': metadata}, [], 0
    for name, t in items:
        raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.contiguous().numpy().tobytes()
        header[name] = {'dtype': names[DTYPE_NAMES[t.dtype]], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(blobs))


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {'torch_version': torch.__version__, 'files': {}}

    def record(name, obj):
        expected['files'][name] = describe_value(obj)

    model = tiny_model()
    state = model.state_dict()
    save(state, 'plain_state_dict.pth')
    record('plain_state_dict.pth', state)

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    model(torch.randn(2, 2, 8)).sum().backward()
    optimizer.step()
    args = argparse.Namespace(lr=1e-4, batch_size=32, name='pamae', betas=(0.9, 0.95), amp=True, resume=None)
    nested = {
        'epoch': 3,
        'model_state_dict': model.state_dict(),
        'optimizer_state_dict': optimizer.state_dict(),
        'args': args,
        'best_loss': 0.125,
        'best_np': np.float64(0.5),
        'big_int': 2 ** 40,
        'negative': -7,
        'history': [1.5, 2, 'three', None, False],
    }
    save(nested, 'nested_checkpoint.pth')
    record('nested_checkpoint.pth', nested)

    # PA-MAE-shaped checkpoint: encoder.* and decoder.* keys inside model_state_dict (REFERENCE_SPEC §6).
    torch.manual_seed(1)
    pamae = OrderedDict()
    pamae['encoder.stem.0.weight'] = torch.randn(4, 2, 3)
    pamae['encoder.stem.1.weight'] = torch.ones(4)
    pamae['encoder.stem.1.bias'] = torch.zeros(4)
    pamae['encoder.stem.1.running_mean'] = torch.randn(4)
    pamae['encoder.stem.1.running_var'] = torch.rand(4) + 0.5
    pamae['encoder.stem.1.num_batches_tracked'] = torch.tensor(17)
    pamae['encoder.feature_proj.weight'] = torch.randn(6, 4, 1)
    pamae['encoder.feature_proj.bias'] = torch.randn(6)
    pamae['encoder.phase_head.2.weight'] = torch.randn(2, 4, 1)
    pamae['decoder.proj.weight'] = torch.randn(4, 6, 1)
    pamae['decoder.final_conv.bias'] = torch.randn(2)
    save({'epoch': 99, 'model_state_dict': pamae, 'best_val_rec': 0.01}, 'pamae_checkpoint.pth')
    record('pamae_checkpoint.pth', {'epoch': 99, 'model_state_dict': pamae, 'best_val_rec': 0.01})

    # Flow-shaped checkpoint: DiT weights in model_state_dict, fine-tuned encoder unprefixed.
    flow = {
        'epoch': 9,
        'model_state_dict': OrderedDict([('x_embedder.weight', torch.randn(3, 4)), ('pos_embed', torch.randn(1, 2, 3))]),
        'encoder_state_dict': OrderedDict([('stem.0.weight', torch.randn(4, 2, 3)), ('feature_proj.bias', torch.randn(6))]),
    }
    save(flow, 'flow_checkpoint.pth')
    record('flow_checkpoint.pth', flow)

    torch.manual_seed(2)
    base = torch.randn(3, 5)
    dtypes = OrderedDict([
        ('f16', base.half()), ('bf16', base.bfloat16()), ('f64', base.double()),
        ('f16_special', torch.tensor([0.0, -0.0, 65504.0, 6e-8, float('inf'), float('-inf'), 1 / 3], dtype=torch.float16)),
        ('i64', torch.tensor([[-(2 ** 40), -1, 0], [1, 2 ** 33, 7]], dtype=torch.int64)),
        ('i32', torch.tensor([-(2 ** 31), 0, 2 ** 31 - 1], dtype=torch.int32)),
        ('i16', torch.tensor([-32768, 5, 32767], dtype=torch.int16)),
        ('i8', torch.tensor([-128, 0, 127], dtype=torch.int8)),
        ('u8', torch.tensor([0, 128, 255], dtype=torch.uint8)),
        ('bool', torch.tensor([True, False, True, True])),
        ('scalar', torch.tensor(2.5)),
        ('empty', torch.zeros(0, 3)),
        ('larger', torch.arange(300, dtype=torch.float32).reshape(3, 10, 10) / 7),
    ])
    save(dtypes, 'dtypes.pth')
    record('dtypes.pth', dtypes)

    grid = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    line = torch.arange(10, dtype=torch.float32)
    views = OrderedDict([
        ('grid', grid),
        ('transposed', grid.t()),  # non-contiguous, shares grid's storage
        ('window', grid[1:3, 2:5]),  # storage offset 8, strides (6, 1)
        ('every_other', grid[:, ::2]),  # stride (6, 2)
        ('head', line[:4]),  # two tensors sharing one storage,
        ('tail', line[4:]),  # the second with offset 4
        ('expanded', torch.tensor([1.0, 2.0]).unsqueeze(0).expand(3, 2)),  # stride 0
    ])
    assert not views['transposed'].is_contiguous()
    save(views, 'views.pth')
    record('views.pth', views)

    template = torch.randn(1, 4, 1, 3, 3)
    save(template, 'bare_tensor.pt')  # like the reference's anatomy_template.pt
    record('bare_tensor.pt', template)

    save(OrderedDict([('w', torch.ones(2))]), 'legacy.pth', _use_new_zipfile_serialization=False)

    # A big-endian, deflate-compressed archive with a `byteorder` record (torch >= 2 writes that
    # record; big-endian hosts write 'big'). Built by rewriting a normal save, all storages f32.
    torch.manual_seed(3)
    big = OrderedDict([('a', torch.randn(2, 3)), ('b', torch.randn(4))])
    little_path = save(big, 'big_endian.pth')
    with zipfile.ZipFile(little_path) as src:
        entries = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(little_path, 'w', compression=zipfile.ZIP_DEFLATED) as dst:
        for name, data in entries:
            if '/data/' in name:
                data = np.frombuffer(data, dtype='<f4').astype('>f4').tobytes()
            dst.writestr(name, data)
        dst.writestr('big_endian/byteorder', 'big')
    record('big_endian.pth', big)

    st = OrderedDict([
        ('weight', torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4),
        ('half', torch.tensor([1.0, -2.0, 0.5], dtype=torch.float16)),
        ('brain', torch.tensor([1.0, -3.0], dtype=torch.bfloat16)),
        ('steps', torch.tensor([3, -4], dtype=torch.int64)),
        ('mask', torch.tensor([True, False, True])),
    ])
    write_reference_safetensors(os.path.join(OUT, 'reference.safetensors'), st, {'format': 'pt', 'source': 'make_io_fixtures'})
    expected['files']['reference.safetensors'] = describe_value(st)

    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1, allow_nan=False)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}', file=sys.stderr)


if __name__ == '__main__':
    main()
