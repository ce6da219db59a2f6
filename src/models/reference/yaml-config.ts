/** The VAE3d constructor arguments inside a reference YAML (config/disentangle_vae3d.yaml layout). */
import { ReferenceConfigError, type Kwargs } from './kwargs';
import { parseYaml, type YamlValue } from './yaml';

const isObject = (v: YamlValue | undefined): v is { [key: string]: YamlValue } => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * `model.params` of the reference's VAE YAML (embed_dim, ddconfig, lossconfig), also accepted at the top
 * level or under `params`; the text may be YAML or the parsed object.
 */
export function vaeKwargsFromYaml(yaml: string | YamlValue, source = 'config.yaml'): Kwargs {
  const root = typeof yaml === 'string' ? parseYaml(yaml, source) : yaml;
  if (!isObject(root)) throw new ReferenceConfigError(`${source}: not a mapping`);
  const model = isObject(root.model) ? root.model : root;
  const params = isObject(model.params) ? model.params : model;
  if (!isObject(params.ddconfig)) throw new ReferenceConfigError(`${source}: no model.params.ddconfig mapping (the reference's VAE YAML has model: params: {embed_dim, lossconfig, ddconfig})`);
  const out: Kwargs = { ddconfig: params.ddconfig, embed_dim: params.embed_dim };
  if (params.lossconfig !== undefined) out.lossconfig = params.lossconfig;
  return out;
}
