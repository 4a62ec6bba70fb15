// Checks of an OpenAPI 3.0 document without a validator package: the document's structure (every
// operation answers, every $ref resolves, every schema a valid OpenAPI 3.0 Schema Object, every example
// valid against its schema), and a value checker for those schemas (what test/openapi.test.ts holds the
// real answers to). Each returns the problems found, as `where: what` lines; none means valid.

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

/** The value a local `$ref` (`#/a/b`) points to, or undefined. */
export const resolveRef = (doc: unknown, ref: string): unknown => {
  if (!ref.startsWith('#/')) return undefined
  let at: unknown = doc
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (!isObject(at) || !(key in at)) return undefined
    at = at[key]
  }
  return at
}

// ---------------------------------------------------------------------------------------------
// Values against schemas

const FORMATS: Record<string, (value: string) => boolean> = {
  uuid: v => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v),
  'date-time': v => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(v) && !Number.isNaN(Date.parse(v)),
  byte: v => /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v),
  uri: v => URL.canParse(v),
}

const typeOf = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value === 'number' ? 'number' : typeof value

const typeMatches = (type: string, value: unknown): boolean => {
  const actual = typeOf(value)
  return actual === type || (type === 'number' && actual === 'integer')
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/** Problems of `value` against the OpenAPI 3.0 schema `schema` (local `$ref`s resolved in `doc`). */
export const valueProblems = (schema: unknown, value: unknown, doc: unknown, at = '$'): string[] => {
  if (!isObject(schema)) return [`${at}: no schema to check against`]
  if (typeof schema.$ref === 'string') {
    const target = resolveRef(doc, schema.$ref)
    return target === undefined ? [`${at}: unresolved $ref ${schema.$ref}`] : valueProblems(target, value, doc, at)
  }
  if (value === null) return schema.nullable === true || schema.type === undefined ? [] : [`${at}: null, and the schema is not nullable`]
  const problems: string[] = []
  for (const sub of (schema.allOf as unknown[] | undefined) ?? []) problems.push(...valueProblems(sub, value, doc, at))
  if (Array.isArray(schema.anyOf) && !schema.anyOf.some(sub => valueProblems(sub, value, doc, at).length === 0)) problems.push(`${at}: matches none of anyOf`)
  if (Array.isArray(schema.oneOf) && schema.oneOf.filter(sub => valueProblems(sub, value, doc, at).length === 0).length !== 1)
    problems.push(`${at}: does not match exactly one of oneOf`)
  if (Array.isArray(schema.enum) && !schema.enum.some(option => sameJson(option, value))) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`)
  if (typeof schema.type === 'string' && !typeMatches(schema.type, value)) return [...problems, `${at}: expected ${schema.type}, got ${typeOf(value)}`]
  if (typeof value === 'string') problems.push(...stringProblems(schema, value, at))
  else if (typeof value === 'number') problems.push(...numberProblems(schema, value, at))
  else if (Array.isArray(value)) problems.push(...arrayProblems(schema, value, doc, at))
  else if (isObject(value)) problems.push(...objectProblems(schema, value, doc, at))
  return problems
}

const stringProblems = (schema: Json, value: string, at: string): string[] => {
  const problems: string[] = []
  const length = [...value].length
  if (typeof schema.minLength === 'number' && length < schema.minLength) problems.push(`${at}: shorter than ${schema.minLength}`)
  if (typeof schema.maxLength === 'number' && length > schema.maxLength) problems.push(`${at}: longer than ${schema.maxLength}`)
  if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) problems.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`)
  const format = typeof schema.format === 'string' ? FORMATS[schema.format] : undefined
  if (format && !format(value)) problems.push(`${at}: ${JSON.stringify(value)} is not a ${String(schema.format)}`)
  return problems
}

const numberProblems = (schema: Json, value: number, at: string): string[] => {
  const problems: string[] = []
  if (typeof schema.minimum === 'number' && (schema.exclusiveMinimum === true ? value <= schema.minimum : value < schema.minimum)) problems.push(`${at}: ${value} is below the minimum ${schema.minimum}`)
  if (typeof schema.maximum === 'number' && (schema.exclusiveMaximum === true ? value >= schema.maximum : value > schema.maximum)) problems.push(`${at}: ${value} is above the maximum ${schema.maximum}`)
  if (typeof schema.multipleOf === 'number' && !Number.isInteger(value / schema.multipleOf)) problems.push(`${at}: ${value} is not a multiple of ${schema.multipleOf}`)
  if (schema.format === 'int64' && !Number.isSafeInteger(value)) problems.push(`${at}: ${value} is not an int64 JavaScript can hold`)
  if (schema.format === 'int32' && (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31)) problems.push(`${at}: ${value} is not an int32`)
  return problems
}

const arrayProblems = (schema: Json, value: unknown[], doc: unknown, at: string): string[] => {
  const problems: string[] = []
  if (typeof schema.minItems === 'number' && value.length < schema.minItems) problems.push(`${at}: fewer than ${schema.minItems} items`)
  if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) problems.push(`${at}: more than ${schema.maxItems} items`)
  if (schema.uniqueItems === true && new Set(value.map(v => JSON.stringify(v))).size !== value.length) problems.push(`${at}: items are not unique`)
  if (schema.items !== undefined) value.forEach((item, i) => problems.push(...valueProblems(schema.items, item, doc, `${at}[${i}]`)))
  return problems
}

const objectProblems = (schema: Json, value: Json, doc: unknown, at: string): string[] => {
  const problems: string[] = []
  const properties = isObject(schema.properties) ? schema.properties : {}
  for (const name of (schema.required as string[] | undefined) ?? []) if (!(name in value)) problems.push(`${at}: required ${name} is missing`)
  for (const [name, field] of Object.entries(value)) {
    const where = `${at}.${name}`
    if (name in properties) problems.push(...valueProblems(properties[name], field, doc, where))
    else if (schema.additionalProperties === false) problems.push(`${where}: not in the schema, which allows no other property`)
    else if (isObject(schema.additionalProperties)) problems.push(...valueProblems(schema.additionalProperties, field, doc, where))
  }
  const count = Object.keys(value).length
  if (typeof schema.minProperties === 'number' && count < schema.minProperties) problems.push(`${at}: fewer than ${schema.minProperties} properties`)
  if (typeof schema.maxProperties === 'number' && count > schema.maxProperties) problems.push(`${at}: more than ${schema.maxProperties} properties`)
  return problems
}

// ---------------------------------------------------------------------------------------------
// Schemas as OpenAPI 3.0 Schema Objects

/** The Schema Object's fields in OpenAPI 3.0 (JSON Schema's `const`, `examples`, `$id`, type arrays… are not among them). */
const SCHEMA_FIELDS = new Set([
  ...['title', 'multipleOf', 'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum', 'maxLength', 'minLength', 'pattern'],
  ...['maxItems', 'minItems', 'uniqueItems', 'maxProperties', 'minProperties', 'required', 'enum', 'type', 'allOf', 'oneOf', 'anyOf'],
  ...['not', 'items', 'properties', 'additionalProperties', 'description', 'format', 'default', 'nullable', 'discriminator'],
  ...['readOnly', 'writeOnly', 'xml', 'externalDocs', 'example', 'deprecated'],
])
const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean'])
const NON_NEGATIVE = ['maxLength', 'minLength', 'maxItems', 'minItems', 'maxProperties', 'minProperties']

/** Problems of `schema` as an OpenAPI 3.0 Schema Object at `at`, its subschemas included; `$ref`s must resolve. */
export const schemaProblems = (schema: unknown, doc: unknown, at: string): string[] => {
  if (!isObject(schema)) return [`${at}: not a Schema Object`]
  if ('$ref' in schema) {
    const problems = typeof schema.$ref === 'string' && resolveRef(doc, schema.$ref) !== undefined ? [] : [`${at}: unresolved $ref ${String(schema.$ref)}`]
    const siblings = Object.keys(schema).filter(k => k !== '$ref')
    return siblings.length > 0 ? [...problems, `${at}: ${siblings.join(', ')} beside $ref (ignored in OpenAPI 3.0)`] : problems
  }
  const problems: string[] = []
  for (const key of Object.keys(schema)) if (!SCHEMA_FIELDS.has(key) && !key.startsWith('x-')) problems.push(`${at}: ${key} is not an OpenAPI 3.0 schema field`)
  if (schema.type !== undefined && !(typeof schema.type === 'string' && TYPES.has(schema.type))) problems.push(`${at}: type ${JSON.stringify(schema.type)} is not an OpenAPI 3.0 type`)
  if (schema.nullable !== undefined && (typeof schema.nullable !== 'boolean' || schema.type === undefined)) problems.push(`${at}: nullable must be a boolean beside a type`)
  for (const key of ['exclusiveMinimum', 'exclusiveMaximum', 'uniqueItems', 'readOnly', 'writeOnly', 'deprecated'])
    if (schema[key] !== undefined && typeof schema[key] !== 'boolean') problems.push(`${at}: ${key} must be a boolean in OpenAPI 3.0`)
  for (const key of ['minimum', 'maximum']) if (schema[key] !== undefined && typeof schema[key] !== 'number') problems.push(`${at}: ${key} must be a number`)
  if (schema.multipleOf !== undefined && !(typeof schema.multipleOf === 'number' && schema.multipleOf > 0)) problems.push(`${at}: multipleOf must be above 0`)
  for (const key of NON_NEGATIVE) if (schema[key] !== undefined && !(Number.isInteger(schema[key]) && (schema[key] as number) >= 0)) problems.push(`${at}: ${key} must be a non-negative integer`)
  for (const key of ['title', 'description', 'format']) if (schema[key] !== undefined && typeof schema[key] !== 'string') problems.push(`${at}: ${key} must be a string`)
  problems.push(...patternProblems(schema, at), ...requiredProblems(schema, at), ...enumProblems(schema, at), ...subschemaProblems(schema, doc, at))
  for (const key of ['example', 'default'])
    if (key in schema) problems.push(...valueProblems(schema, schema[key], doc, `${at}.${key}`).map(p => `${p} (the ${key} does not match its schema)`))
  return problems
}

const patternProblems = (schema: Json, at: string): string[] => {
  if (schema.pattern === undefined) return []
  try {
    new RegExp(String(schema.pattern), 'u')
    return typeof schema.pattern === 'string' ? [] : [`${at}: pattern must be a string`]
  } catch {
    return [`${at}: pattern ${String(schema.pattern)} is not a regular expression`]
  }
}

const requiredProblems = (schema: Json, at: string): string[] => {
  if (schema.required === undefined) return []
  const required = schema.required
  if (!Array.isArray(required) || required.length === 0 || !required.every(r => typeof r === 'string') || new Set(required).size !== required.length)
    return [`${at}: required must be a non-empty array of distinct names`]
  const properties = isObject(schema.properties) ? schema.properties : {}
  return schema.additionalProperties === false ? required.filter(r => !(r in properties)).map(r => `${at}: required ${r} can never be present`) : []
}

const enumProblems = (schema: Json, at: string): string[] => {
  if (schema.enum === undefined) return []
  if (!Array.isArray(schema.enum) || schema.enum.length === 0) return [`${at}: enum must be a non-empty array`]
  const type = schema.type
  return typeof type === 'string' ? schema.enum.filter(v => !typeMatches(type, v)).map(v => `${at}: enum value ${JSON.stringify(v)} is not a ${type}`) : []
}

const subschemaProblems = (schema: Json, doc: unknown, at: string): string[] => {
  const problems: string[] = []
  if (schema.type === 'array' && schema.items === undefined) problems.push(`${at}: an array schema needs items in OpenAPI 3.0`)
  if (schema.items !== undefined) problems.push(...schemaProblems(schema.items, doc, `${at}.items`))
  if (schema.not !== undefined) problems.push(...schemaProblems(schema.not, doc, `${at}.not`))
  if (schema.properties !== undefined) {
    if (!isObject(schema.properties)) problems.push(`${at}: properties must be an object`)
    else for (const [name, sub] of Object.entries(schema.properties)) problems.push(...schemaProblems(sub, doc, `${at}.properties.${name}`))
  }
  if (schema.additionalProperties !== undefined && typeof schema.additionalProperties !== 'boolean')
    problems.push(...schemaProblems(schema.additionalProperties, doc, `${at}.additionalProperties`))
  for (const key of ['allOf', 'anyOf', 'oneOf']) {
    if (schema[key] === undefined) continue
    const list = schema[key]
    if (!Array.isArray(list) || list.length === 0) problems.push(`${at}: ${key} must be a non-empty array`)
    else list.forEach((sub, i) => problems.push(...schemaProblems(sub, doc, `${at}.${key}[${i}]`)))
  }
  return problems
}

// ---------------------------------------------------------------------------------------------
// The document

export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const
const PATH_ITEM_FIELDS = new Set<string>([...METHODS, '$ref', 'summary', 'description', 'servers', 'parameters'])
const OPERATION_FIELDS = new Set(['tags', 'summary', 'description', 'externalDocs', 'operationId', 'parameters', 'requestBody', 'responses', 'callbacks', 'deprecated', 'security', 'servers'])
const STATUS = /^(default|[1-5](\d\d|XX))$/
const MEDIA_TYPE = /^[a-z]+\/[a-z0-9.+*-]+$/i

/** Every `$ref` anywhere in `value`, with where it is. */
const refsIn = function* (value: unknown, at: string): Generator<[string, string]> {
  if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* refsIn(v, `${at}[${i}]`)
  else if (isObject(value))
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') yield [at, v]
      else yield* refsIn(v, `${at}.${k}`)
    }
}

const contentProblems = (content: unknown, doc: unknown, at: string): string[] => {
  if (!isObject(content) || Object.keys(content).length === 0) return [`${at}: content must map media types`]
  const problems: string[] = []
  for (const [media, entry] of Object.entries(content)) {
    if (!MEDIA_TYPE.test(media)) problems.push(`${at}: ${media} is not a media type`)
    if (!isObject(entry) || entry.schema === undefined) {
      problems.push(`${at}.${media}: no schema`)
      continue
    }
    problems.push(...schemaProblems(entry.schema, doc, `${at}.${media}.schema`))
    if ('example' in entry) problems.push(...valueProblems(entry.schema, entry.example, doc, `${at}.${media}.example`).map(p => `${p} (the example does not match its schema)`))
  }
  return problems
}

const parameterProblems = (parameters: unknown, template: string, doc: unknown, at: string): string[] => {
  if (parameters !== undefined && !Array.isArray(parameters)) return [`${at}: parameters must be an array`]
  const problems: string[] = []
  const list = (parameters ?? []) as Json[]
  const seen = new Set<string>()
  for (const [i, p] of list.entries()) {
    const where = `${at}.parameters[${i}]`
    if (typeof p.name !== 'string' || !['query', 'header', 'path', 'cookie'].includes(String(p.in))) problems.push(`${where}: needs a name and in (query, header, path or cookie)`)
    if (p.in === 'path' && p.required !== true) problems.push(`${where}: a path parameter must be required`)
    if (seen.has(`${String(p.in)} ${String(p.name)}`)) problems.push(`${where}: ${String(p.name)} twice`)
    seen.add(`${String(p.in)} ${String(p.name)}`)
    problems.push(...schemaProblems(p.schema, doc, `${where}.schema`))
  }
  const inTemplate = [...template.matchAll(/\{([^}]+)\}/g)].map(m => m[1] as string).sort()
  const declared = list.filter(p => p.in === 'path').map(p => String(p.name)).sort()
  if (JSON.stringify(inTemplate) !== JSON.stringify(declared)) problems.push(`${at}: path parameters ${declared.join(', ') || 'none'} are not the template's ${inTemplate.join(', ') || 'none'}`)
  return problems
}

const operationProblems = (op: Json, template: string, doc: Json, at: string): string[] => {
  const problems = Object.keys(op).filter(k => !OPERATION_FIELDS.has(k) && !k.startsWith('x-')).map(k => `${at}: ${k} is not an operation field`)
  problems.push(...parameterProblems(op.parameters, template, doc, at))
  if (op.requestBody !== undefined) problems.push(...contentProblems((op.requestBody as Json).content, doc, `${at}.requestBody.content`))
  const responses = op.responses
  if (!isObject(responses) || Object.keys(responses).length === 0) return [...problems, `${at}: no responses`]
  for (const [status, response] of Object.entries(responses)) {
    const where = `${at}.responses.${status}`
    if (!STATUS.test(status)) problems.push(`${where}: not a status code`)
    if (!isObject(response) || typeof response.description !== 'string') {
      problems.push(`${where}: a response needs a description`)
      continue
    }
    if (response.content !== undefined) problems.push(...contentProblems(response.content, doc, `${where}.content`))
    for (const [name, header] of Object.entries(isObject(response.headers) ? response.headers : {})) problems.push(...schemaProblems((header as Json).schema, doc, `${where}.headers.${name}.schema`))
  }
  const schemes = isObject(doc.components) && isObject(doc.components.securitySchemes) ? doc.components.securitySchemes : {}
  for (const requirement of (op.security as Json[] | undefined) ?? [])
    for (const name of Object.keys(requirement)) if (!(name in schemes)) problems.push(`${at}: security scheme ${name} is not in components.securitySchemes`)
  const tags = new Set(((doc.tags as Json[] | undefined) ?? []).map(t => t.name))
  for (const tag of (op.tags as string[] | undefined) ?? []) if (!tags.has(tag)) problems.push(`${at}: tag ${tag} is not declared`)
  return problems
}

const securitySchemeProblems = (schemes: unknown): string[] =>
  Object.entries(isObject(schemes) ? schemes : {}).flatMap(([name, s]) => {
    const scheme = s as Json
    const at = `components.securitySchemes.${name}`
    if (scheme.type === 'apiKey') return typeof scheme.name === 'string' && ['query', 'header', 'cookie'].includes(String(scheme.in)) ? [] : [`${at}: an apiKey needs name and in`]
    if (scheme.type === 'http') return typeof scheme.scheme === 'string' ? [] : [`${at}: http needs a scheme`]
    return ['oauth2', 'openIdConnect'].includes(String(scheme.type)) ? [] : [`${at}: unknown type ${String(scheme.type)}`]
  })

/** Problems of `doc` as an OpenAPI 3.0 document (the parts this API uses, checked strictly). */
export const documentProblems = (doc: unknown): string[] => {
  if (!isObject(doc)) return ['the document is not an object']
  const problems: string[] = []
  if (typeof doc.openapi !== 'string' || !/^3\.0\.\d+$/.test(doc.openapi)) problems.push(`openapi: ${String(doc.openapi)} is not 3.0.x`)
  if (!isObject(doc.info) || typeof doc.info.title !== 'string' || typeof doc.info.version !== 'string') problems.push('info: needs title and version')
  if (!isObject(doc.paths)) return [...problems, 'paths: missing']
  const operationIds = new Set<string>()
  for (const [template, item] of Object.entries(doc.paths)) {
    if (!template.startsWith('/') || !isObject(item)) {
      problems.push(`paths.${template}: a path starts with / and holds a Path Item`)
      continue
    }
    problems.push(...Object.keys(item).filter(k => !PATH_ITEM_FIELDS.has(k) && !k.startsWith('x-')).map(k => `paths.${template}: ${k} is not a path item field`))
    for (const server of [...((item.servers as Json[] | undefined) ?? []), ...((doc.servers as Json[] | undefined) ?? [])])
      if (typeof server.url !== 'string') problems.push(`paths.${template}: a server needs a url`)
    for (const method of METHODS) {
      const op = item[method]
      if (op === undefined) continue
      const at = `paths.${template}.${method}`
      if (!isObject(op)) {
        problems.push(`${at}: not an operation`)
        continue
      }
      problems.push(...operationProblems(op, template, doc, at))
      if (typeof op.operationId === 'string') {
        if (operationIds.has(op.operationId)) problems.push(`${at}: operationId ${op.operationId} twice`)
        operationIds.add(op.operationId)
      }
    }
  }
  const components = isObject(doc.components) ? doc.components : {}
  for (const [name, s] of Object.entries(isObject(components.schemas) ? components.schemas : {})) problems.push(...schemaProblems(s, doc, `components.schemas.${name}`))
  problems.push(...securitySchemeProblems(components.securitySchemes))
  for (const [at, ref] of refsIn(doc, '$')) if (resolveRef(doc, ref) === undefined) problems.push(`${at}: $ref ${ref} does not resolve`)
  return problems
}
