/**
 * fromReferenceConfig: the reference's constructor arguments give the reference's architecture. The names and
 * shapes come from torch state_dicts of the reference classes built with the same kwargs
 * (tools/torch_oracle/make_import_fixtures.py → tests/fixtures/weights/reference-shapes.json).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { Generator } from '../../src/kernels/random';
import { DIT_CONFIGS } from '../../src/models/dit-config';
import { PAMAE_CONFIGS } from '../../src/models/pamae-config';
import { VAE_CONFIGS } from '../../src/models/vae3d';
import {
  checkStateShapes, discriminatorStateShapes, ditStateShapes, ecgDecoderStateShapes, ecgEncoderStateShapes, fromReferenceConfig, parseYaml,
  referenceConfig, ReferenceConfigError, vaeKwargsFromYaml, vaeStateShapes, type ReferenceClassName, type ShapeList,
} from '../../src/models/reference/index';
import { WeightsError } from '../../src/models/io/errors';
import { HostTensor } from '../../src/models/io/tensor';
import type { Vae3dConfig } from '../../src/models/vae3d';
import type { PatchGan3dConfig } from '../../src/models/discriminator3d';

const FIXTURES = join(__dirname, '..', 'fixtures', 'weights');
interface ShapeCase { class: ReferenceClassName; kwargs: Record<string, unknown>; state_dict: ShapeList }
const cases = (JSON.parse(readFileSync(join(FIXTURES, 'reference-shapes.json'), 'utf8')) as { cases: ShapeCase[] }).cases;
const cpu = Engine.cpu();

const asMap = (list: ShapeList) => new Map(list.map(([k, s]) => [k, s.join('x')]));
const withoutPrefix = (list: ShapeList, prefix: string): ShapeList => list.filter(([k]) => k.startsWith(prefix)).map(([k, s]) => [k.slice(prefix.length), s]);

/** Our layout for a translated config, split the way the torch module's state_dict is. */
function ourShapes(c: ShapeCase): { main: ShapeList; torchMain: ShapeList; disc?: ShapeList; torchDisc?: ShapeList } {
  const { config } = referenceConfig(c.class, c.kwargs);
  switch (c.class) {
    case 'ECGEncoder': return { main: ecgEncoderStateShapes(config as never), torchMain: c.state_dict };
    case 'ECGDecoder': return { main: ecgDecoderStateShapes(config as never), torchMain: c.state_dict };
    case 'ECG_DiT': return { main: ditStateShapes(config as never), torchMain: c.state_dict };
    case 'NLayerDiscriminator3D': return { main: discriminatorStateShapes(config as never), torchMain: c.state_dict };
    case 'VAE3d': {
      const vae = config as Vae3dConfig;
      return {
        main: vaeStateShapes(vae), torchMain: c.state_dict.filter(([k]) => !k.startsWith('loss.')),
        disc: discriminatorStateShapes(vae.discriminator), torchDisc: withoutPrefix(c.state_dict, 'loss.discriminator.'),
      };
    }
  }
}

describe('reference constructor arguments → identical architecture', () => {
  it('covers every class with several argument sets', () => {
    const classes = new Set(cases.map((c) => c.class));
    expect([...classes].sort()).toEqual(['ECGDecoder', 'ECGEncoder', 'ECG_DiT', 'NLayerDiscriminator3D', 'VAE3d']);
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });

  for (const [i, c] of cases.entries()) {
    it(`${c.class} #${i} ${JSON.stringify(c.kwargs).slice(0, 80)}: state-dict names and shapes as torch's`, () => {
      const { main, torchMain, disc, torchDisc } = ourShapes(c);
      expect(asMap(main)).toEqual(asMap(torchMain));
      // Same order too: loading code and listings follow the state-dict order.
      expect(main.map(([k]) => k).sort()).toEqual(torchMain.map(([k]) => k).sort());
      if (disc) expect(asMap(disc)).toEqual(asMap(torchDisc!));
    });
  }

  // Models small enough to allocate on the CPU engine: the built module's own state dict must match as well.
  const buildable = cases.filter((c) => c.state_dict.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0) < 3_000_000);
  for (const c of buildable) {
    it(`${c.class} ${JSON.stringify(c.kwargs).slice(0, 60)}: fromReferenceConfig builds exactly those tensors`, () => {
      const built = fromReferenceConfig({ backend: cpu.backend, gen: new Generator(3) }, c.class, c.kwargs);
      try {
        const own: ShapeList = [...built.model.stateDict()].map(([k, t]) => [k, [...t.shape]]);
        const torch = c.class === 'VAE3d' ? c.state_dict.filter(([k]) => !k.startsWith('loss.')) : c.state_dict;
        expect(asMap(own)).toEqual(asMap(torch));
        if (c.class === 'VAE3d') {
          const disc = fromReferenceConfig({ backend: cpu.backend, gen: new Generator(4) }, 'NLayerDiscriminator3D', {
            input_nc: (built.config as Vae3dConfig).discriminator.inChannels, ndf: (built.config as Vae3dConfig).discriminator.ndf, n_layers: (built.config as Vae3dConfig).discriminator.nLayers,
          });
          expect(asMap([...disc.model.stateDict()].map(([k, t]) => [k, [...t.shape]]))).toEqual(asMap(withoutPrefix(c.state_dict, 'loss.discriminator.')));
          disc.model.dispose();
        }
      } finally {
        built.model.dispose();
      }
    });
  }
});

describe('reference defaults', () => {
  it('ECGEncoder() and ECGDecoder() are the released PA-MAE', () => {
    expect(referenceConfig('ECGEncoder').config).toEqual(PAMAE_CONFIGS.paper.encoder);
    expect(referenceConfig('ECGDecoder').config).toEqual(PAMAE_CONFIGS.paper.decoder);
  });

  it('ECG_DiT() is the released DiT; train_num_points is accepted and reported as ignored', () => {
    expect(referenceConfig('ECG_DiT').config).toEqual(DIT_CONFIGS.paper);
    expect(referenceConfig('ECG_DiT', { train_num_points: 1 }).ignored).toEqual(['train_num_points']);
  });

  it("the released YAML's VAE3d arguments give the paper VAE; training knobs are listed as ignored", () => {
    const yaml = [
      'model:', '  params:', '    embed_dim: 4', '    lossconfig:', '      target: ldm.modules.losses.contperceptual.LPIPSWithDiscriminator', '      params:',
      '        disc_start: 10000', '        kl_weight: 0.000001', '        disc_weight: 0.5', '        disc_in_channels: 1', '    ddconfig:', '      ch: 64',
      '      ch_mult: [1, 2, 4, 4]  # 4 levels', '      num_res_blocks: 2', '      attn_resolutions: []', '      dropout: 0.0', '      in_channels: 1', '      out_ch: 1',
      '      resolution: 96', '      z_channels: 4', '      temp_res: 50', '      f_t: 0', '      use_3d_conv: True',
    ].join('\n');
    const result = referenceConfig('VAE3d', vaeKwargsFromYaml(yaml));
    const { discriminator, ...rest } = result.config;
    const { discriminator: paperDisc, ...paper } = VAE_CONFIGS.paper;
    expect(rest).toEqual(paper);
    expect(discriminator).toEqual({ ...paperDisc, nLayers: 3 });
    expect(result.ignored).toEqual(expect.arrayContaining(['lossconfig.params.disc_start', 'lossconfig.params.kl_weight', 'ddconfig.attn_resolutions', 'ddconfig.use_3d_conv']));
  });

  it('NLayerDiscriminator3D() has the reference defaults (1 channel, ndf 64, 3 layers)', () => {
    expect(referenceConfig('NLayerDiscriminator3D').config).toEqual<PatchGan3dConfig>({ inChannels: 1, ndf: 64, nLayers: 3 });
  });

  it('VAE3d ch_mult defaults to the reference Encoder default (1, 2, 4, 8)', () => {
    expect(referenceConfig('VAE3d', { embed_dim: 4, ddconfig: { ch: 32, num_res_blocks: 1, z_channels: 4 } }).config.chMult).toEqual([1, 2, 4, 8]);
  });
});

describe('arguments that do not describe a buildable reference model', () => {
  const cases: [string, () => unknown, RegExp][] = [
    ['an unknown ECGEncoder argument', () => referenceConfig('ECGEncoder', { base_filter: 32 }), /unexpected argument 'base_filter'.*base_filters/],
    ['a fractional width', () => referenceConfig('ECG_DiT', { hidden_size: 12.5 }), /'hidden_size' must be an integer/],
    ['heads that do not divide the width', () => referenceConfig('ECG_DiT', { hidden_size: 30, num_heads: 4 }), /not divisible by num_heads 4/],
    ['temporal downsampling', () => referenceConfig('VAE3d', { embed_dim: 4, ddconfig: { ch: 32, num_res_blocks: 1, z_channels: 4, f_t: 1 } }), /f_t = 1 is not supported/],
    ['widths GroupNorm(32) cannot split', () => referenceConfig('VAE3d', { embed_dim: 4, ddconfig: { ch: 48, ch_mult: [1, 2], num_res_blocks: 1, z_channels: 4 } }), /multiples of 32 \(48 are not\)/],
    ['a missing required ddconfig argument', () => referenceConfig('VAE3d', { embed_dim: 4, ddconfig: { ch: 32, z_channels: 4 } }), /missing required argument 'num_res_blocks'/],
    ['a missing ddconfig', () => referenceConfig('VAE3d', { embed_dim: 4 }), /missing required argument 'ddconfig'/],
    ['actnorm in the discriminator', () => referenceConfig('NLayerDiscriminator3D', { use_actnorm: true }), /use_actnorm = true is not supported/],
    ['an unknown class', () => referenceConfig('UNet' as ReferenceClassName, {}), /unknown reference class 'UNet'/],
  ];
  for (const [what, fn, message] of cases) {
    it(what, () => {
      expect(fn).toThrow(ReferenceConfigError);
      expect(fn).toThrow(message);
    });
  }
});

describe('shape check against a checkpoint', () => {
  it('names missing keys, unexpected keys and both shapes of a mismatch', () => {
    const expected = ditStateShapes(referenceConfig('ECG_DiT', { input_size: 2, num_frames: 2, in_channels: 2, hidden_size: 8, depth: 1, num_heads: 2, ecg_dim: 8 }).config);
    const tensors = new Map(expected.map(([k, s]) => [k, new HostTensor('f32', s, new Float32Array(s.reduce((a, b) => a * b, 1)))]));
    tensors.delete('final_linear.bias');
    tensors.set('extra.weight', new HostTensor('f32', [1], new Float32Array(1)));
    tensors.set('x_embedder.weight', new HostTensor('f32', [8, 3], new Float32Array(24)));
    const check = () => checkStateShapes(expected, tensors, { file: 'flow.pth', what: 'the DiT', against: 'ECG_DiT(...)', fix: 'Fix it.' });
    expect(check).toThrow(WeightsError);
    expect(check).toThrow(/flow\.pth: the DiT does not match ECG_DiT\(\.\.\.\): 1 missing key\(s\): final_linear\.bias; 1 unexpected key\(s\): extra\.weight; 1 shape mismatch\(es\): x_embedder\.weight: \[8, 3\] in the file, \[8, 2\] expected\. Fix it\./);
  });
});

describe('YAML subset', () => {
  it('reads the fixture written in the reference layout', () => {
    const text = readFileSync(join(FIXTURES, 'import', 'disentangle_vae3d.yaml'), 'utf8');
    const oracle = JSON.parse(readFileSync(join(FIXTURES, 'import', 'oracle.json'), 'utf8'));
    const kwargs = vaeKwargsFromYaml(text, 'disentangle_vae3d.yaml');
    expect(kwargs.embed_dim).toBe(oracle.embed_dim);
    expect(kwargs.ddconfig).toEqual(oracle.ddconfig);
    expect((kwargs.lossconfig as { params: unknown }).params).toEqual(oracle.lossconfig);
  });

  it('parses scalars, lists and comments', () => {
    expect(parseYaml("a: 1\nb: -2.5e-3 # c\nc: [1, 'x', True]\nd:\n  - 3\n  - none\ne: ~\nf: \"q # r\"\n")).toEqual({ a: 1, b: -2.5e-3, c: [1, 'x', true], d: [3, 'none'], e: null, f: 'q # r' });
  });

  it('refuses what it does not read, with the line number', () => {
    expect(() => parseYaml('a: 1\n  b: 2\n', 'x.yaml')).toThrow(/x\.yaml:2: unexpected indentation/);
    expect(() => parseYaml('a: &anchor 1\n', 'x.yaml')).toThrow(/x\.yaml:1: unsupported YAML syntax '&'/);
    expect(() => parseYaml('a: 1\na: 2\n', 'x.yaml')).toThrow(/x\.yaml:2: duplicate key 'a'/);
    expect(() => parseYaml('a: [1, [2]]\n', 'x.yaml')).toThrow(ReferenceConfigError);
  });
});
