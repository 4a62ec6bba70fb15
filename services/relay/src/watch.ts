import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import type { Logger } from '@msr/telemetry'
import type { RelayConfig } from './config.js'
import type { Part } from './lifecycle.js'
import type { RelayMetrics } from './metrics.js'
import type { Settings } from './settings.js'

/** Reads and validates the configuration again: the config, or every problem found. */
export type ConfigLoader = () => { ok: true; value: RelayConfig } | { ok: false; errors: string[] }

const SETTLE_MS = 150

/**
 * `serve --watch`: re-reads the configuration file when it changes. A file that fails validation is
 * logged and the running configuration kept; otherwise reloadable keys apply at once and keys that
 * need a restart are named in the log. The directory is watched, so editors that replace the file work.
 */
export const watchConfig = (file: string, load: ConfigLoader, settings: Settings, logger: Logger, metrics: RelayMetrics): FSWatcher => {
  const path = resolve(file)
  let timer: NodeJS.Timeout | undefined
  const reload = () => {
    try {
      apply()
    } catch (error) {
      // A reload must never take the relay down: the running configuration stays in force.
      metrics.reloads.inc({ outcome: 'failed' })
      logger.error({ err: error, file: path }, 'configuration reload failed; the running configuration is kept')
    }
  }
  const apply = () => {
    const loaded = load()
    if (!loaded.ok) {
      metrics.reloads.inc({ outcome: 'invalid' })
      return logger.error({ file: path, errors: loaded.errors }, 'configuration change rejected; the running configuration is kept')
    }
    const { applied, restartRequired } = settings.reload(loaded.value)
    metrics.reloads.inc({ outcome: 'applied' })
    if (applied.length > 0 || restartRequired.length === 0) logger.info({ file: path, applied }, 'configuration reloaded')
    if (restartRequired.length > 0) logger.warn({ file: path, keys: restartRequired }, 'configuration keys changed that apply only after a restart')
  }
  const watcher = watch(dirname(path), (_event, name) => {
    if (name !== null && name !== basename(path)) return
    clearTimeout(timer)
    timer = setTimeout(reload, SETTLE_MS)
  })
  watcher.on('error', error => logger.error({ err: error, file: path }, 'configuration watch failed'))
  return watcher
}

/** `serve --watch` as a part of the relay: watching from start to stop. */
export const configWatcher = (file: string, load: ConfigLoader, settings: Settings, logger: Logger, metrics: RelayMetrics): Part => {
  let watcher: FSWatcher | undefined
  return {
    name: 'config watcher',
    start: () => void (watcher = watchConfig(file, load, settings, logger, metrics)),
    stop: async () => watcher?.close(),
  }
}
