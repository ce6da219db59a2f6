"""Golden files for the FID / FVD feature networks (tests/eval/feature-nets.test.ts), REFERENCE_SPEC §7.1.

Inception-v3 is torchvision's own Inception3 (`inception_v3(weights=IMAGENET1K_V1)` builds it with
transform_input=True, aux_logits=True); the classifier is removed (fc = Identity) so the output is the
2048-d pooled feature. I3D is our own re-implementation of the `InceptionI3d` of VideoGPT's
`videogpt/fvd/pytorch_i3d.py` (a copy of piergiaj/pytorch-i3d): same state-dict keys, TF-"SAME" padding
computed from the input size, zero padding before the max pools, BatchNorm3d eps 1e-5 (VideoGPT's copy;
piergiaj's original uses 1e-3), final AvgPool3d((2, 7, 7), stride 1).

The full-size networks have 27 M (Inception) and 12 M (I3D) parameters, too many to commit, so every weight
comes from a counter hash that the TypeScript test reproduces bit for bit (`hashed_values`): only the
inputs' recipe and the outputs are stored. Weights are rounded to float32; the math runs in float64.

Writes tests/fixtures/golden/feature_nets/:
  inception_input.npy      the network input of frame 0 after resize to 75x75, ImageNet normalisation and
                           transform_input, (3, 75, 75)
  inception_features.npy   2048-d features of the 2 test frames (20x20 in [0, 1], resized to 75x75), (2, 2048)
  i3d_input.npy            the network input of a (3, 10, 10) clip resized to 16x16 and mapped to [-1, 1],
                           (3, 3, 16, 16)
  i3d_mixed5c.npy          Mixed_5c output of 2 clips of 6 frames at 40x40 (the trunk), (2, 1024, 1, 2, 2)
  i3d_head.npy             the feature head (2x7x7 average pool, mean over the remaining positions) of a
                           hashed (1, 1024, 3, 7, 7) map, (1, 1024)
  i3d_full_features.npy    features of 1 clip of 9 frames at 193x193, the smallest input the head accepts
                           (checked only when FEATURE_NETS_FULL=1), (1, 1024)
  sample_weights.pth       a few real-key tensors (with int64 num_batches_tracked) to check the .pth reader
Run with Debian's torch and torchvision: /usr/bin/python3 tools/torch_oracle/feature_nets.py
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.inception import Inception3

OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'fixtures', 'golden', 'feature_nets')
MASK = 0xFFFFFFFF
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------------------------------
# Hashed values, shared with the TypeScript test.

def fnv1a(text):
    h = 0x811C9DC5
    for byte in text.encode('utf-8'):
        h = ((h ^ byte) * 0x01000193) & MASK
    return h


def hashed_uniform(seed, n):
    """u in [0, 1): murmur3's finaliser of (i * 0x9E3779B1 + seed) mod 2^32, divided by 2^32."""
    x = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B1) + np.uint64(seed)) & np.uint64(MASK)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & np.uint64(MASK)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & np.uint64(MASK)
    x ^= x >> np.uint64(16)
    return x.astype(np.float64) / 4294967296.0


def hashed_values(key, shape):
    """The value of state-dict entry `key`: He-scaled uniform conv/linear weights, BatchNorm scales and
    variances in [0.5, 1.5), shifts and means in [-0.1, 0.1), float32-rounded."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = hashed_uniform(fnv1a(key), n)
    if key.endswith('num_batches_tracked'):
        return np.full(shape, 7, dtype=np.int64)
    if key.endswith('running_var') or key.endswith('bn.weight'):
        v = 0.5 + u
    elif key.endswith('running_mean') or key.endswith('bias'):
        v = (u - 0.5) * 0.2
    else:
        fan_in = int(np.prod(shape[1:]))
        v = (2 * u - 1) * (np.sqrt(3.0) * np.sqrt(2.0 / fan_in))
    return v.astype(np.float32).reshape(shape)


def load_hashed(model):
    state = {}
    for key, t in model.state_dict().items():
        state[key] = torch.from_numpy(hashed_values(key, tuple(t.shape)))
    model.load_state_dict(state)
    return state


def hashed_input(name, shape):
    """Inputs in [0, 1)."""
    return hashed_uniform(fnv1a(name), int(np.prod(shape))).reshape(shape)


# ------------------------------------------------------------------------------------------------------
# Inception-v3 (torchvision) and its preprocessing.

def inception_v3_features_model():
    model = Inception3(num_classes=1000, aux_logits=True, transform_input=True, init_weights=False)
    load_hashed(model)
    model.fc = nn.Identity()
    return model.double().eval()


def inception_preprocess(frames, size):
    """frames (N, H, W) in [0, 1] → (N, 3, size, size): replicate, bilinear resize, ImageNet normalise."""
    x = torch.from_numpy(frames)[:, None].repeat(1, 3, 1, 1)
    x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64)[None, :, None, None]
    return (x - mean) / std


# ------------------------------------------------------------------------------------------------------
# I3D: the InceptionI3d of VideoGPT / piergiaj, written out again with the same module names.

def same_pads(sizes, kernel, stride):
    """TF 'SAME' padding as F.pad's list (last dim first): pad = max(k - s, 0) if size % s == 0 else
    max(k - size % s, 0); front = pad // 2."""
    pads = []
    for size, k, s in reversed(list(zip(sizes, kernel, stride))):
        p = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [p // 2, p - p // 2]
    return pads


class Unit3D(nn.Module):
    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), bn_eps=1e-5):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, stride=self.stride, padding=0, bias=False)
        self.bn = nn.BatchNorm3d(cout, eps=bn_eps)

    def forward(self, x):
        x = F.pad(x, same_pads(x.shape[2:], self.kernel, self.stride))
        return F.relu(self.bn(self.conv3d(x)))


class MaxPoolSame(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):
        return F.max_pool3d(F.pad(x, same_pads(x.shape[2:], self.kernel, self.stride)), self.kernel, self.stride)


class Mixed(nn.Module):
    def __init__(self, cin, c, bn_eps):
        super().__init__()
        self.b0 = Unit3D(cin, c[0], bn_eps=bn_eps)
        self.b1a = Unit3D(cin, c[1], bn_eps=bn_eps)
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3), bn_eps=bn_eps)
        self.b2a = Unit3D(cin, c[3], bn_eps=bn_eps)
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3), bn_eps=bn_eps)
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, c[5], bn_eps=bn_eps)

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


# (name, in channels, [b0, b1a, b1b, b2a, b2b, b3b]) as in pytorch_i3d.py
I3D_MIXED = {
    'Mixed_3b': (192, [64, 96, 128, 16, 32, 32]),
    'Mixed_3c': (256, [128, 128, 192, 32, 96, 64]),
    'Mixed_4b': (480, [192, 96, 208, 16, 48, 64]),
    'Mixed_4c': (512, [160, 112, 224, 24, 64, 64]),
    'Mixed_4d': (512, [128, 128, 256, 24, 64, 64]),
    'Mixed_4e': (512, [112, 144, 288, 32, 64, 64]),
    'Mixed_4f': (528, [256, 160, 320, 32, 128, 128]),
    'Mixed_5b': (832, [256, 160, 320, 32, 128, 128]),
    'Mixed_5c': (832, [384, 192, 384, 48, 128, 128]),
}


class InceptionI3d(nn.Module):
    def __init__(self, bn_eps=1e-5):
        super().__init__()
        e = bn_eps
        self.stages = []

        def add(name, module):
            self.add_module(name, module)
            self.stages.append(module)

        add('Conv3d_1a_7x7', Unit3D(3, 64, (7, 7, 7), (2, 2, 2), e))
        add('MaxPool3d_2a_3x3', MaxPoolSame((1, 3, 3), (1, 2, 2)))
        add('Conv3d_2b_1x1', Unit3D(64, 64, bn_eps=e))
        add('Conv3d_2c_3x3', Unit3D(64, 192, (3, 3, 3), bn_eps=e))
        add('MaxPool3d_3a_3x3', MaxPoolSame((1, 3, 3), (1, 2, 2)))
        add('Mixed_3b', Mixed(*I3D_MIXED['Mixed_3b'], e))
        add('Mixed_3c', Mixed(*I3D_MIXED['Mixed_3c'], e))
        add('MaxPool3d_4a_3x3', MaxPoolSame((3, 3, 3), (2, 2, 2)))
        for name in ['Mixed_4b', 'Mixed_4c', 'Mixed_4d', 'Mixed_4e', 'Mixed_4f']:
            add(name, Mixed(*I3D_MIXED[name], e))
        add('MaxPool3d_5a_2x2', MaxPoolSame((2, 2, 2), (2, 2, 2)))
        add('Mixed_5b', Mixed(*I3D_MIXED['Mixed_5b'], e))
        add('Mixed_5c', Mixed(*I3D_MIXED['Mixed_5c'], e))
        # The 400-way classifier: in the file, unused by the features.
        self.logits = nn.Module()
        self.logits.conv3d = nn.Conv3d(1024, 400, 1, bias=True)

    def trunk(self, x):
        for stage in self.stages:
            x = stage(x)
        return x

    @staticmethod
    def head(mixed5c):
        """extract_features' AvgPool3d((2, 7, 7), stride 1), then the mean over the remaining positions."""
        return F.avg_pool3d(mixed5c, (2, 7, 7), stride=1).mean(dim=(2, 3, 4))

    def features(self, x):
        return self.head(self.trunk(x))


def i3d_preprocess(clips, size):
    """clips (N, T, H, W) in [0, 1] → (N, 3, T, size, size): per-frame bilinear resize, 2x - 1, replicate."""
    n, t, h, w = clips.shape
    x = torch.from_numpy(clips).reshape(n * t, 1, h, w)
    x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
    x = (2 * x - 1).reshape(n, 1, t, size, size)
    return x.repeat(1, 3, 1, 1, 1)


def i3d_model():
    model = InceptionI3d()
    load_hashed(model)
    return model.double().eval()


# ------------------------------------------------------------------------------------------------------

def save(name, array):
    np.save(os.path.join(OUT, f'{name}.npy'), np.ascontiguousarray(np.asarray(array, dtype=np.float32)))


def count_macs(model, x, run):
    """Multiply-accumulates of the convolutions for one forward (reported, for choosing test sizes)."""
    total = [0]

    def hook(m, inp, out):
        total[0] += out.numel() * m.weight[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    run(x)
    for h in handles:
        h.remove()
    return total[0]


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_grad_enabled(False)

    inception = inception_v3_features_model()
    frames = hashed_input('inception_frames', (2, 20, 20))
    x = inception.__class__._transform_input(inception, inception_preprocess(frames, 75))
    save('inception_input', x[0].numpy())
    feats = inception(inception_preprocess(frames, 75))
    save('inception_features', feats.numpy())
    # 0.20 G multiply-accumulates per frame at 75x75, 5.71 G at the reference's 299x299.
    print('inception features', tuple(feats.shape), 'MAC/frame at 75:', count_macs(inception, inception_preprocess(frames[:1], 75), inception) / 1e9, 'G')

    i3d = i3d_model()
    save('i3d_input', i3d_preprocess(hashed_input('i3d_clip', (1, 3, 10, 10)), 16)[0].numpy())
    clips = hashed_input('i3d_clips', (2, 6, 40, 40))
    trunk = i3d.trunk(i3d_preprocess(clips, 40))
    save('i3d_mixed5c', trunk.numpy())
    print('i3d mixed5c', tuple(trunk.shape), 'MAC/clip:', count_macs(i3d, i3d_preprocess(clips[:1], 40), i3d.trunk) / 1e9, 'G')
    head_in = torch.from_numpy(2 * hashed_input('i3d_head', (1, 1024, 3, 7, 7)) - 1)
    save('i3d_head', InceptionI3d.head(head_in).numpy())
    full = hashed_input('i3d_full_clip', (1, 9, 24, 24))
    full_x = i3d_preprocess(full, 193)
    save('i3d_full_features', i3d.features(full_x).numpy())
    # 14.4 G multiply-accumulates; a reference clip (50 frames at 224x224) takes 87.6 G.
    print('i3d full MAC/clip (9 x 193 x 193):', count_macs(i3d, full_x, i3d.features) / 1e9, 'G')

    # A few real-key tensors for the .pth reader (int64 num_batches_tracked included).
    sample = {}
    for key, t in inception_v3_features_model().state_dict().items():
        if key.startswith('Conv2d_1a_3x3.'):
            sample[key] = torch.from_numpy(hashed_values(key, tuple(t.shape)))
    for key in ['Mixed_3b.b2a.conv3d.weight', 'Mixed_3b.b2a.bn.num_batches_tracked']:
        sample[key] = torch.from_numpy(hashed_values(key, tuple(i3d.state_dict()[key].shape)))
    torch.save(sample, os.path.join(OUT, 'sample_weights.pth'))


if __name__ == '__main__':
    main()
