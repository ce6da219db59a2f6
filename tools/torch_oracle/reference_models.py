"""The reference's model classes with the reference's constructor signatures and defaults
(REFERENCE_SPEC §3-§5), assembled from this folder's PyTorch re-implementations (pamae.py, vae.py,
dit.py). Used to dump parameter names and shapes for given kwargs and to write checkpoints in the
reference's exact layouts (make_import_fixtures.py).

  ECGEncoder(in_channels=12, base_filters=64, out_dim=768, target_len=50)
  ECGDecoder(in_dim=768, out_channels=12, base_filters=64)
  VAE3d(lossconfig, ddconfig, embed_dim)       ddconfig: ch, ch_mult, num_res_blocks, attn_resolutions
                                               (ignored: attention sits on the last two levels),
                                               dropout, in_channels, out_ch, resolution, z_channels,
                                               temp_res, f_t (only 0), ...
  ECG_DiT(input_size=12, num_frames=50, in_channels=4, hidden_size=512, depth=8, num_heads=8,
          ecg_dim=768, train_num_points=4)
  NLayerDiscriminator3D(input_nc=1, ndf=64, n_layers=3)
"""
import torch
import torch.nn as nn

import dit as dit_oracle
import pamae as pamae_oracle
import vae as vae_oracle

# Fixed inside the reference classes (not constructor arguments).
PHASE_HIDDEN = 256
VAE_GROUPS = 32
VAE_HEADS = 8
VAE_TEMB = 512
DIT_MLP_RATIO = 4.0
DIT_FREQ = 256


def ECGEncoder(in_channels=12, base_filters=64, out_dim=768, target_len=50):
    b = base_filters
    return pamae_oracle.Encoder(dict(
        in_channels=in_channels, stem_channels=b, layer_channels=[b, 2 * b, 4 * b, 8 * b], layer_strides=[1, 2, 1, 1],
        blocks=2, feature_dim=out_dim, phase_hidden=PHASE_HIDDEN))


def ECGDecoder(in_dim=768, out_channels=12, base_filters=64):
    b = base_filters
    return pamae_oracle.Decoder(dict(feature_dim=in_dim, proj_channels=8 * b, up_channels=[4 * b, 2 * b, b], out_channels=out_channels))


class PaMae(nn.Module):
    """What train_ecg.py saves: encoder.* and decoder.* in one model."""

    def __init__(self, base_filters=64, out_dim=768, in_channels=12):
        super().__init__()
        self.encoder = ECGEncoder(in_channels, base_filters, out_dim)
        self.decoder = ECGDecoder(out_dim, in_channels, base_filters)


class NLayerDiscriminator3D(nn.Module):
    """The 3-D PatchGAN for any n_layers: strided k4 convs (the last strided one k(3,4,4)), widths
    ndf·min(2^n, 8), then a stride-1 k(1,4,4) conv with BatchNorm and the k(1,4,4) logit conv."""

    def __init__(self, input_nc=1, ndf=64, n_layers=3):
        super().__init__()
        lrelu = lambda: nn.LeakyReLU(0.2, True)
        seq = [nn.Conv3d(input_nc, ndf, 4, 2, 1), lrelu()]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            k = (3, 4, 4) if n == n_layers - 1 else 4
            seq += [nn.Conv3d(ndf * prev, ndf * mult, k, 2, 1, bias=False), nn.BatchNorm3d(ndf * mult), lrelu()]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [nn.Conv3d(ndf * prev, ndf * mult, (1, 4, 4), 1, (0, 1, 1), bias=False), nn.BatchNorm3d(ndf * mult), lrelu()]
        seq += [nn.Conv3d(ndf * mult, 1, (1, 4, 4), 1, (0, 1, 1))]
        self.main = nn.Sequential(*seq)


class TinyPerceptual(nn.Module):
    """Stands in for the LPIPS/VGG16 module under loss.perceptual_loss.* (same kind of key names,
    tiny shapes): the importer must drop these keys, whatever they hold."""

    def __init__(self):
        super().__init__()
        self.scaling_layer = nn.Module()
        self.scaling_layer.register_buffer('shift', torch.tensor([-.030, -.088, -.188])[None, :, None, None])
        self.scaling_layer.register_buffer('scale', torch.tensor([.458, .448, .450])[None, :, None, None])
        self.net = nn.Module()
        self.net.slice1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
        self.lin0 = nn.Module()
        self.lin0.model = nn.Sequential(nn.Dropout(), nn.Conv2d(4, 1, 1, bias=False))


class LPIPSWithDiscriminator(nn.Module):
    def __init__(self, disc_start=10000, disc_in_channels=1, disc_num_layers=3, disc_ch=64, **_ignored):
        super().__init__()
        self.logvar = nn.Parameter(torch.zeros(()), requires_grad=False)
        self.perceptual_loss = TinyPerceptual()
        self.discriminator = NLayerDiscriminator3D(disc_in_channels, disc_ch, disc_num_layers)


def _ddconfig_to_oracle(dd, embed_dim):
    if dd.get('f_t', 0) != 0:
        raise ValueError('only f_t = 0 (no temporal downsampling) is modelled')
    levels = len(dd['ch_mult'])
    return dict(
        ch=dd['ch'], ch_mult=list(dd['ch_mult']), enc_blocks=dd['num_res_blocks'], dec_blocks=dd['num_res_blocks'] + 1,
        z_channels=dd['z_channels'], embed_dim=embed_dim, in_channels=dd.get('in_channels', 1), out_ch=dd.get('out_ch', 1),
        groups=VAE_GROUPS, heads=VAE_HEADS, temb_ch=VAE_TEMB, attn_levels=[i for i in range(levels) if i >= levels - 2])


class VAE3d(nn.Module):
    def __init__(self, lossconfig, ddconfig, embed_dim):
        super().__init__()
        self.loss = LPIPSWithDiscriminator(**lossconfig.get('params', {}))
        inner = vae_oracle.VAE3d(_ddconfig_to_oracle(ddconfig, embed_dim))
        self.encoder_3d = inner.encoder_3d
        self.decoder = inner.decoder
        self.quant_conv = inner.quant_conv
        self.post_quant_conv = inner.post_quant_conv


def ECG_DiT(input_size=12, num_frames=50, in_channels=4, hidden_size=512, depth=8, num_heads=8, ecg_dim=768, train_num_points=4):
    return dit_oracle.EcgDiT(hidden_size, depth, num_heads, DIT_MLP_RATIO, in_channels, (input_size, input_size), num_frames, ecg_dim, DIT_FREQ)


def names_and_shapes(module):
    return [[k, list(v.shape)] for k, v in module.state_dict().items()]
