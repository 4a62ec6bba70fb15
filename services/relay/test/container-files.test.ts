// Container and deployment files cannot be run here (no Docker engine), so they are checked by parsing.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'
import { parse } from 'yaml'

const root = new URL('../../../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')

test('docker-compose.yml runs the relay from its Dockerfile on loopback with a data volume', () => {
  const compose = parse(read('docker-compose.yml')) as {
    services: Record<string, { build: { context: string; dockerfile: string }; ports?: string[]; volumes: string[] }>
  }
  const relay = compose.services.relay
  assert.ok(relay, 'relay service')
  assert.equal(relay.build.dockerfile, 'services/relay/Dockerfile')
  assert.ok(existsSync(new URL(relay.build.dockerfile, root)))
  assert.ok((relay.ports ?? []).every(p => p.startsWith('127.0.0.1:')), 'ports bound to loopback only')
  assert.ok(relay.volumes.some(v => v.endsWith(':/data')))
})

test('the mailbox-api Dockerfile copies paths that exist and runs the CLI as an unprivileged user on 0.0.0.0', () => {
  const dockerfile = read('services/mailbox-api/Dockerfile')
  const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap(m => (m[1] as string).split(/\s+/))
  for (const source of sources) assert.ok(existsSync(new URL(source, root)), `COPY source ${source} exists`)
  assert.match(dockerfile, /^USER node$/m)
  assert.match(dockerfile, /HOST=0\.0\.0\.0/)
  assert.match(dockerfile, /^CMD \["node", "--import", "@msr\/telemetry\/register", "dist\/src\/cli\.js", "serve"\]$/m)
  assert.match(dockerfile, /MSR_DEFAULT_SERVICE_NAME=msr-mailbox$/m)
})

test('docker-compose.yml runs the mailbox API on its PostgreSQL, started and healthy first', () => {
  const compose = parse(read('docker-compose.yml')) as {
    services: Record<string, { build?: { dockerfile: string }; depends_on?: Record<string, { condition: string }>; environment?: Record<string, string>; ports?: string[] }>
  }
  const api = compose.services['mailbox-api']
  assert.ok(api && compose.services.postgres)
  assert.equal(api.build?.dockerfile, 'services/mailbox-api/Dockerfile')
  assert.equal(api.depends_on?.postgres?.condition, 'service_healthy')
  assert.match(api.environment?.DATABASE_URL ?? '', /@postgres:5432\//)
  assert.ok((api.ports ?? []).every(p => p.startsWith('127.0.0.1:')))
})

test('the relay Dockerfile copies paths that exist and runs the CLI as an unprivileged user', () => {
  const dockerfile = read('services/relay/Dockerfile')
  const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap(m => (m[1] as string).split(/\s+/))
  assert.ok(sources.length > 0)
  for (const source of sources) assert.ok(existsSync(new URL(source, root)), `COPY source ${source} exists`)
  assert.match(dockerfile, /^USER node$/m)
  assert.match(dockerfile, /^CMD \["node", "--import", "@msr\/telemetry\/register", "dist\/src\/cli\.js", "serve"\]$/m)
  assert.match(dockerfile, /RELAY_NETWORK__HOST=0\.0\.0\.0/)
  assert.match(dockerfile, /MSR_DEFAULT_SERVICE_NAME=msr-relay \\$/m)
  assert.match(dockerfile, /MSR_TRACE_CONTEXT=sync$/m, "the relay traces with a synchronous context")
})

test('every Dockerfile installs every workspace lib (their package.json files are copied before npm ci)', () => {
  const libs = readdirSync(new URL('libs/', root)).filter(name => existsSync(new URL(`libs/${name}/package.json`, root)))
  assert.ok(libs.includes('hints'))
  for (const service of ['relay', 'mailbox-api']) {
    const dockerfile = read(`services/${service}/Dockerfile`)
    for (const lib of libs) assert.match(dockerfile, new RegExp(`^COPY libs/${lib}/package\\.json libs/${lib}/$`, 'm'), `${service} copies libs/${lib}/package.json`)
  }
})

test('docker-compose.yml sends the relay’s hints to the mailbox API push route with the token the API expects', () => {
  const compose = parse(read('docker-compose.yml')) as { services: Record<string, { environment?: Record<string, string> }> }
  const relay = compose.services.relay?.environment ?? {}
  const api = compose.services['mailbox-api']?.environment ?? {}
  assert.equal(relay.RELAY_HINTS__TRANSPORT, 'local')
  assert.equal(relay.RELAY_HINTS__PUSH_URL, 'http://mailbox-api:8081/internal/pubsub/push')
  assert.ok(relay.RELAY_HINTS__PUSH_TOKEN && relay.RELAY_HINTS__PUSH_TOKEN === api.HINTS_PUSH_TOKEN, 'one token on both sides')
})

test('each image can resolve @msr/telemetry/register from its working directory, with the lib built', () => {
  const telemetry = JSON.parse(read('libs/telemetry/package.json')) as { name: string; exports: Record<string, { default: string }> }
  assert.equal(telemetry.name, '@msr/telemetry')
  assert.match(telemetry.exports['./register']?.default ?? '', /^\.\/dist\//)
  for (const service of ['relay', 'mailbox-api']) {
    const dockerfile = read(`services/${service}/Dockerfile`)
    // The build stage compiles the service with its references (libs/telemetry among them) and keeps its production dependencies.
    const tsconfig = JSON.parse(read(`services/${service}/tsconfig.json`)) as { references: { path: string }[] }
    assert.ok(tsconfig.references.some(r => r.path === '../../libs/telemetry'), `${service} builds libs/telemetry`)
    const pkg = JSON.parse(read(`services/${service}/package.json`)) as { dependencies: Record<string, string> }
    assert.ok(pkg.dependencies['@msr/telemetry'], `${service} depends on @msr/telemetry (npm prune --omit=dev keeps it)`)
    assert.match(dockerfile, new RegExp(`^RUN npx tsc -b services/${service} `, 'm'))
    // The runtime stage: node_modules (with the workspace symlink node_modules/@msr/telemetry -> ../../libs/telemetry)
    // and libs/ with their dist sit in /app, an ancestor of the working directory the CMD runs in.
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
    assert.match(runtime, /^WORKDIR \/app$/m)
    assert.match(runtime, /^COPY --from=build \/app\/node_modules node_modules$/m)
    assert.match(runtime, /^COPY --from=build \/app\/libs libs$/m)
    const workdirs = [...runtime.matchAll(/^WORKDIR (\S+)$/gm)].map(m => m[1])
    assert.equal(workdirs.at(-1), `/app/services/${service}`)
    assert.ok(runtime.indexOf('--import') > runtime.lastIndexOf('WORKDIR '), 'the CMD runs in the last WORKDIR')
  }
})

type ComposeService = {
  image?: string
  ports?: string[]
  volumes?: string[]
  depends_on?: Record<string, { condition: string }>
  environment?: Record<string, string>
}
const compose = () => parse(read('docker-compose.yml')) as { services: Record<string, ComposeService> }

test('docker-compose.yml runs an OpenTelemetry Collector and Jaeger, pinned, with every published port on loopback', () => {
  const { services } = compose()
  const collector = services['otel-collector']
  const jaeger = services.jaeger
  assert.ok(collector && jaeger, 'otel-collector and jaeger services')
  assert.match(collector.image ?? '', /^otel\/opentelemetry-collector-contrib:\d+\.\d+\.\d+$/)
  assert.match(jaeger.image ?? '', /^jaegertracing\/jaeger:2\.\d+\.\d+$/)
  assert.ok((jaeger.ports ?? []).includes('127.0.0.1:16686:16686'), 'Jaeger UI on 127.0.0.1:16686')
  for (const [name, service] of Object.entries(services))
    for (const port of service.ports ?? []) assert.ok(port.startsWith('127.0.0.1:'), `${name} publishes ${port} on loopback only`)
})

test('docker-compose.yml sends both services’ spans to the collector over OTLP/HTTP, all sampled, collector started first', () => {
  const { services } = compose()
  for (const name of ['relay', 'mailbox-api']) {
    const service = services[name]
    const env = service?.environment ?? {}
    assert.equal(env.OTEL_TRACES_EXPORTER, 'otlp', name)
    assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://otel-collector:4318', name)
    assert.equal(env.OTEL_EXPORTER_OTLP_PROTOCOL, 'http/protobuf', name)
    assert.equal(env.OTEL_TRACES_SAMPLER, 'parentbased_traceidratio', name)
    assert.equal(env.OTEL_TRACES_SAMPLER_ARG, '1', name)
    assert.equal(service?.depends_on?.['otel-collector']?.condition, 'service_started', `${name} depends on the collector`)
  }
})

test('the local collector config takes OTLP over gRPC and HTTP and exports the traces pipeline to Jaeger and debug', () => {
  const mount = (compose().services['otel-collector']?.volumes ?? []).find(v => v.includes('otel-collector.yaml'))
  assert.ok(mount, 'the collector mounts its config')
  const [source, target] = mount.split(':')
  assert.equal(source, './infra/local/otel-collector.yaml')
  assert.equal(target, '/etc/otelcol-contrib/config.yaml')
  type Endpoint = { endpoint?: string }
  const config = parse(read('infra/local/otel-collector.yaml')) as {
    receivers: { otlp?: { protocols?: { grpc?: Endpoint; http?: Endpoint } } }
    exporters: Record<string, (Endpoint & { verbosity?: string }) | null>
    service: { pipelines: Record<string, { receivers: string[]; exporters: string[] }> }
  }
  const protocols = config.receivers.otlp?.protocols
  // 0.0.0.0: the receivers' default, localhost, is unreachable from the other containers.
  assert.equal(protocols?.grpc?.endpoint, '0.0.0.0:4317')
  assert.equal(protocols?.http?.endpoint, '0.0.0.0:4318')
  const traces = config.service.pipelines.traces
  assert.ok(traces, 'a traces pipeline')
  assert.ok(traces.receivers.includes('otlp'))
  for (const exporter of traces.exporters) assert.ok(exporter in config.exporters, `exporter ${exporter} is configured`)
  const toJaeger = traces.exporters.filter(e => /^otlp_(grpc|http)(\/|$)/.test(e) && /^(https?:\/\/)?jaeger:43(17|18)\b/.test(config.exporters[e]?.endpoint ?? ''))
  assert.equal(toJaeger.length, 1, 'one exporter sends the traces to the jaeger service')
  const debug = traces.exporters.find(e => e === 'debug' || e.startsWith('debug/'))
  assert.ok(debug, 'the debug exporter is in the pipeline')
  assert.equal(config.exporters[debug]?.verbosity, 'basic')
})

// The local gateway (infra/local/gateway.conf), the mirror of the load balancer's URL map on Google Cloud.
const gatewayConf = () => read('infra/local/gateway.conf').replace(/#.*$/gm, '')
/** The body of each `location` block by its head (`= /api/v1`, `/api/v1/`, `/`); the blocks hold no nested braces. */
const locations = () => new Map([...gatewayConf().matchAll(/^\s*location\s+([^{]+?)\s*{([^{}]*)}/gm)].map(m => [m[1] as string, m[2] as string]))
/** The values of a directive in a block, e.g. directive(body, 'proxy_set_header') -> ['Host $http_host', …]. */
const directive = (body: string, name: string) => [...body.matchAll(new RegExp(`(?:^|[;{\\s])${name}\\s+([^;]+);`, 'g'))].map(m => (m[1] as string).trim().replace(/\s+/g, ' '))
const GATEWAY_URL = '127.0.0.1:8000'

test('docker-compose.yml puts an nginx gateway, pinned to a stable alpine tag, in front of both services on 127.0.0.1:8000 only', () => {
  const { services } = compose()
  const gateway = services.gateway
  assert.ok(gateway, 'gateway service')
  // nginx's stable branches have an even minor version (1.28, 1.30); a mainline tag or `latest` is not pinned.
  assert.match(gateway.image ?? '', /^nginx:1\.\d*[02468](\.\d+)?-alpine$/)
  assert.deepEqual(gateway.ports, ['127.0.0.1:8000:8000'])
  assert.ok((gateway.volumes ?? []).includes('./infra/local/gateway.conf:/etc/nginx/conf.d/default.conf:ro'), 'the config is mounted read-only')
  for (const upstream of ['relay', 'mailbox-api']) assert.equal(gateway.depends_on?.[upstream]?.condition, 'service_healthy', `the gateway waits for ${upstream}`)
  // The gateway is the front door: neither service publishes its own port on the host.
  for (const name of ['relay', 'mailbox-api']) assert.deepEqual(services[name]?.ports ?? [], [], `${name} publishes no port`)
  assert.match(gatewayConf(), /^\s*listen\s+8000;/m)
})

test('the gateway sends /api/v1 and /api/v1/* to the mailbox API, path preserved, its probes, and nothing else', () => {
  const blocks = locations()
  for (const head of ['= /api/v1', '/api/v1/']) {
    const body = blocks.get(head)
    assert.ok(body !== undefined, `location ${head}`)
    // No URI after host:port: nginx passes the request's path and query unchanged.
    assert.deepEqual(directive(body, 'proxy_pass'), ['http://mailbox-api:8081'], head)
  }
  const toMailbox = [...blocks].filter(([, body]) => body.includes('mailbox-api')).map(([head]) => head)
  assert.deepEqual(toMailbox.sort(), ['/api/v1/', '= /api/healthz', '= /api/readyz', '= /api/v1'], 'only /api/v1 and the probes reach the mailbox API (not /internal/*)')
  assert.deepEqual(directive(blocks.get('= /api/healthz') ?? '', 'proxy_pass'), ['http://mailbox-api:8081/healthz'])
  assert.deepEqual(directive(blocks.get('= /api/readyz') ?? '', 'proxy_pass'), ['http://mailbox-api:8081/readyz'])
  assert.ok(![...blocks.keys()].some(head => head.includes('internal') && !/return\s+404/.test(blocks.get(head) ?? '')), '/internal/ is not routed')
})

test('the gateway sends everything else to the relay with the WebSocket upgrade and the Cloud Run relay timeout', () => {
  const conf = gatewayConf()
  const body = locations().get('/')
  assert.ok(body !== undefined, 'location /')
  assert.deepEqual(directive(body, 'proxy_pass'), ['http://relay:8080'])
  // HTTP/1.1 in the block or inherited from the server.
  assert.ok(directive(conf, 'proxy_http_version').every(v => v === '1.1') && directive(conf, 'proxy_http_version').length > 0, 'proxy_http_version 1.1')
  const headers = directive(body, 'proxy_set_header')
  assert.ok(headers.includes('Upgrade $http_upgrade'), 'Upgrade header')
  assert.ok(headers.includes('Connection $connection_upgrade'), 'Connection header')
  const map = /map\s+\$http_upgrade\s+\$connection_upgrade\s*{([^}]*)}/.exec(conf)?.[1] ?? ''
  assert.match(map, /default\s+upgrade;/)
  assert.match(map, /''\s+close;/)
  assert.deepEqual(directive(body, 'proxy_read_timeout'), ['3600s'])
  assert.deepEqual(directive(body, 'proxy_send_timeout'), ['3600s'])
})

test('every gateway route appends the client to X-Forwarded-For and passes the protocol and the Host as sent', () => {
  const blocks = locations()
  assert.ok(blocks.size >= 3)
  for (const [head, body] of blocks) {
    if (directive(body, 'proxy_pass').length === 0) continue
    const headers = directive(body, 'proxy_set_header')
    assert.ok(headers.includes('X-Forwarded-For $proxy_add_x_forwarded_for'), `${head}: X-Forwarded-For appended`)
    assert.ok(headers.includes('X-Forwarded-Proto $scheme'), `${head}: X-Forwarded-Proto`)
    assert.ok(headers.includes('Host $http_host'), `${head}: Host as the client sent it`)
  }
})

test('the gateway accepts the mailbox API’s largest body, and a little more', () => {
  // services/mailbox-api/src/app.ts (bodyLimit): two artifacts of the maximum size as base64, plus 64 KiB.
  const config = read('services/mailbox-api/src/config.ts')
  const fallback = /MAILBOX_MAX_ARTIFACT_BYTES: integer\((\d+)/.exec(config)?.[1]
  assert.ok(fallback, 'the default MAILBOX_MAX_ARTIFACT_BYTES')
  const maxArtifactBytes = Number(compose().services['mailbox-api']?.environment?.MAILBOX_MAX_ARTIFACT_BYTES ?? fallback)
  assert.match(read('services/mailbox-api/src/app.ts'), /2 \* Math\.ceil\(maxArtifactBytes \/ 3\) \* 4 \+ 64 \* 1024/, 'the formula below is the API’s')
  const bodyLimit = 2 * Math.ceil(maxArtifactBytes / 3) * 4 + 64 * 1024
  const bytes = (size: string) => {
    const m = /^(\d+)([kKmM]?)$/.exec(size)
    assert.ok(m, `client_max_body_size ${size}`)
    return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 * 1024 } as Record<string, number>)[(m[2] as string).toLowerCase()]!
  }
  for (const head of ['= /api/v1', '/api/v1/']) {
    const sizes = directive(locations().get(head) ?? '', 'client_max_body_size')
    assert.equal(sizes.length, 1, `${head} sets client_max_body_size`)
    const size = bytes(sizes[0] as string)
    assert.ok(size >= bodyLimit && size <= 2 * bodyLimit, `${head}: ${size} bytes against the API's ${bodyLimit}`)
  }
})

test('docker-compose.yml: both services trust exactly the gateway (1 proxy), name the gateway’s URL, and push hints directly', () => {
  const { services } = compose()
  const relay = services.relay?.environment ?? {}
  const api = services['mailbox-api']?.environment ?? {}
  assert.equal(relay.RELAY_NETWORK__TRUSTED_PROXIES, '1')
  assert.equal(api.TRUSTED_PROXIES, '1')
  assert.equal(relay.RELAY_NETWORK__PUBLIC_URL, `ws://${GATEWAY_URL}`)
  assert.equal(api.PUBLIC_URL, `http://${GATEWAY_URL}`)
  assert.match(relay.RELAY_HINTS__PUSH_URL ?? '', /^http:\/\/mailbox-api:8081\/internal\//, 'hints bypass the gateway')
})
