// infra/terraform read as data: every .tf file parsed with HashiCorp's HCL parser (@cdktf/hcl2json), merged,
// with helpers to follow references between resources. No provider is needed (none can be downloaded here).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from '@cdktf/hcl2json'
import { ROOT } from './platform.js'

/** An HCL block as hcl2json gives it: attributes as values, nested blocks as arrays of blocks. */
export type Block = Record<string, unknown>

export interface Terraform {
  files: string[]
  /** `resource[type][name]`: the block. */
  resource: Record<string, Record<string, Block>>
  variable: Record<string, Block>
  output: Record<string, Block>
  locals: Block
}

export const TERRAFORM_DIR = join(ROOT, 'infra/terraform')

export const loadTerraform = async (): Promise<Terraform> => {
  const files = readdirSync(TERRAFORM_DIR).filter(f => f.endsWith('.tf')).sort()
  const tf: Terraform = { files, resource: {}, variable: {}, output: {}, locals: {} }
  for (const file of files) {
    const parsed = (await parse(file, readFileSync(join(TERRAFORM_DIR, file), 'utf8'))) as Record<string, unknown>
    for (const [type, byName] of Object.entries((parsed.resource ?? {}) as Record<string, Record<string, Block[]>>))
      for (const [name, blocks] of Object.entries(byName)) {
        tf.resource[type] ??= {}
        if (tf.resource[type][name]) throw new Error(`resource ${type}.${name} defined twice`)
        tf.resource[type][name] = blocks[0] as Block
      }
    for (const [name, blocks] of Object.entries((parsed.variable ?? {}) as Record<string, Block[]>)) tf.variable[name] = blocks[0] as Block
    for (const [name, blocks] of Object.entries((parsed.output ?? {}) as Record<string, Block[]>)) tf.output[name] = blocks[0] as Block
    for (const block of (parsed.locals ?? []) as Block[]) Object.assign(tf.locals, block)
  }
  return tf
}

/** The resource `type.name`, or a failure naming it. */
export const resource = (tf: Terraform, type: string, name: string): Block => {
  const found = tf.resource[type]?.[name]
  if (!found) throw new Error(`no resource ${type}.${name}`)
  return found
}

/** The one nested block `name` of `block` (hcl2json wraps each in an array). */
export const child = (block: Block | undefined, name: string): Block => {
  const list = block?.[name]
  if (!Array.isArray(list) || list.length !== 1) throw new Error(`expected one ${name} block, got ${JSON.stringify(list)}`)
  return list[0] as Block
}

/** Every nested block `name` of `block`. */
export const children = (block: Block | undefined, name: string): Block[] => (Array.isArray(block?.[name]) ? (block[name] as Block[]) : [])

/** `type.name` that an expression such as "${google_x.y.id}" refers to. */
export const refersTo = (value: unknown): string | undefined => /^\$\{([a-z0-9_]+\.[a-z0-9_]+)\.[a-z_]+\}$/.exec(String(value))?.[1]

/** A Cloud Run v2 service's app container: the one that takes requests (has `ports`; sidecars have none). */
export const appContainer = (service: Block): Block => {
  const serving = children(child(service, 'template'), 'containers').filter(c => c.ports)
  if (serving.length !== 1) throw new Error(`expected one container with ports, got ${serving.length}`)
  return serving[0] as Block
}

/** The `env` entries of a Cloud Run v2 service's app container, by name. */
export const containerEnv = (service: Block): Map<string, Block> => new Map(children(appContainer(service), 'env').map(e => [String(e.name), e]))

/** The `dynamic "env"` blocks of a Cloud Run v2 service's app container (hcl2json: `dynamic` is one object of block lists). */
export const dynamicEnv = (service: Block): Block[] => children((appContainer(service).dynamic ?? {}) as Block, 'env')
