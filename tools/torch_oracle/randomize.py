"""Golden fixtures must be able to fail: no parameter may keep a constant initial value.

PyTorch initialises biases of nn.MultiheadAttention (in_proj_bias, out_proj.bias), norm affines (weight 1,
bias 0) and BatchNorm running statistics (mean 0, var 1) to constants. A kernel that reads such an operand
from the wrong place (a bias slice without its offset, a norm weight ignored) then gives the right answer
and the fixture cannot catch it. `randomize_constants` replaces every parameter and running statistic whose
elements are all equal with random values around its role's scale; `assert_no_constants` checks the result.
"""
import torch


def _is_constant(t):
    flat = t.reshape(-1)
    return flat.numel() > 0 and bool((flat == flat[0]).all())


def _candidates(model):
    for name, t in model.named_parameters():
        yield name, t
    for name, t in model.named_buffers():
        if 'running_' in name:
            yield name, t


def randomize_constants(model, gen, std=0.2):
    """Every constant parameter / running statistic: ones → 1 + N(0, std²), running_var → U(0.5, 2),
    anything else → N(0, std²). Returns the names changed."""
    changed = []
    with torch.no_grad():
        for name, t in _candidates(model):
            if not t.is_floating_point() or not _is_constant(t):
                continue
            noise = torch.randn(t.shape, generator=gen, dtype=t.dtype)
            if 'running_var' in name:
                t.copy_(0.5 + 1.5 * torch.rand(t.shape, generator=gen, dtype=t.dtype))
            elif float(t.reshape(-1)[0]) == 1.0:
                t.copy_(1 + std * noise)
            else:
                t.copy_(std * noise)
            changed.append(name)
    return changed


def assert_no_constants(model):
    bad = [name for name, t in _candidates(model) if t.is_floating_point() and t.numel() > 1 and _is_constant(t)]
    if bad:
        raise AssertionError(f'constant parameters left in the fixture: {bad}')
