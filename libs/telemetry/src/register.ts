// `node --import @msr/telemetry/register …`: tracing starts before any service module loads.
// The service's CLI calls `stopTracing()` in its shutdown; this module never exits the process itself.
import { startTracing } from './tracing.js'

// The composition roots have not run yet, so this is the one place outside config.ts that reads the environment.
const env = process.env

/**
 * Flushes buffered spans; the CLIs call it before `process.exit`. A process that ends by draining its
 * event loop flushes on `beforeExit` instead.
 */
export const stopTracing = await startTracing({ serviceName: env['OTEL_SERVICE_NAME'] || env['MSR_DEFAULT_SERVICE_NAME'] || undefined, env })

process.once('beforeExit', () => void stopTracing())
