// @msr/config: TOML file + environment + overrides, validated by a zod schema, with a generated reference.
export { loadConfig, type ConfigResult, type LoadConfigOptions } from './load-config.js'
export { duration, parseDuration, DURATION_MESSAGE, MAX_DURATION, type DurationRange } from './duration.js'
export { configReference, type ReferenceOptions } from './reference.js'
export { section } from './section.js'
export { deepFreeze } from './tree.js'
export { envName, parseEnvValue } from './env-overlay.js'
export * from './marked-section.js'
