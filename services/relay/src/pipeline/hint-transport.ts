import { createLocalTransport, createPubSubTransport, type HintTransport } from '@msr/hints'
import { tracingActive } from '@msr/telemetry'
import type { RelayConfig } from '../config.js'

/** The transport `[hints]` selects, or undefined when hints are off. */
export const hintTransport = (hints: RelayConfig['hints']): HintTransport | undefined => {
  switch (hints.transport) {
    case 'none':
      return undefined
    case 'local':
      return createLocalTransport({ pushUrl: hints.push_url, ...(hints.push_token && { token: hints.push_token }), timeoutMs: hints.publish_timeout })
    case 'pubsub':
      return createPubSubTransport({ ...(hints.project_id && { projectId: hints.project_id }), topics: { group: hints.group_topic, dm: hints.dm_topic }, timeoutMs: hints.publish_timeout, maxReconnectBackoffMs: hints.max_backoff, openTelemetry: tracingActive() })
  }
}
