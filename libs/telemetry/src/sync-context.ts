// A context manager that keeps the active context only for the duration of a synchronous call. The SDK's
// default (AsyncLocalStorage) follows every promise, which on Node 20 installs promise hooks for the whole
// process as soon as it is first used: on the relay's promise-heavy EVENT path that cost 5-8 % of ingest
// with 1 % sampling (npm run bench -w services/relay -- --tracing). The relay passes its spans explicitly,
// so it needs the active context only for log lines and child spans made synchronously inside a span.
import { ROOT_CONTEXT, type Context, type ContextManager } from '@opentelemetry/api'

export class SyncContextManager implements ContextManager {
  private current: Context = ROOT_CONTEXT

  active(): Context {
    return this.current
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    const previous = this.current
    this.current = context
    try {
      return fn.call(thisArg, ...args)
    } finally {
      this.current = previous
    }
  }

  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target
    const run = <R>(fn: () => R): R => this.with(context, fn)
    return function (this: unknown, ...args: unknown[]) {
      return run(() => (target as (...a: unknown[]) => unknown).apply(this, args))
    } as T
  }

  enable(): this {
    return this
  }

  disable(): this {
    this.current = ROOT_CONTEXT
    return this
  }
}
