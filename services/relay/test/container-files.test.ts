// Container and deployment files cannot be run here (no Docker engine), so they are checked by parsing.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'
import { parse } from 'yaml'

const root = new URL('../../../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')

test('docker-compose.yml runs the relay from its Dockerfile on loopback with a data volume', () => {
  const compose = parse(read('docker-compose.yml')) as {
    services: Record<string, { build: { context: string; dockerfile: string }; ports: string[]; volumes: string[] }>
  }
  const relay = compose.services.relay
  assert.ok(relay, 'relay service')
  assert.equal(relay.build.dockerfile, 'services/relay/Dockerfile')
  assert.ok(existsSync(new URL(relay.build.dockerfile, root)))
  assert.ok(relay.ports.every(p => p.startsWith('127.0.0.1:')), 'ports bound to loopback only')
  assert.ok(relay.volumes.some(v => v.endsWith(':/data')))
})

test('the mailbox-api Dockerfile copies paths that exist and runs the CLI as an unprivileged user on 0.0.0.0', () => {
  const dockerfile = read('services/mailbox-api/Dockerfile')
  const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap(m => (m[1] as string).split(/\s+/))
  for (const source of sources) assert.ok(existsSync(new URL(source, root)), `COPY source ${source} exists`)
  assert.match(dockerfile, /^USER node$/m)
  assert.match(dockerfile, /HOST=0\.0\.0\.0/)
  assert.match(dockerfile, /CMD \["node", "dist\/src\/cli\.js", "serve"\]/)
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
  assert.match(dockerfile, /CMD \["node", "dist\/src\/cli\.js", "serve"\]/)
  assert.match(dockerfile, /RELAY_NETWORK__HOST=0\.0\.0\.0/)
})

test('cloudbuild.yaml tests before it builds, pushes and deploys the relay as a single instance', () => {
  const build = parse(read('cloudbuild.yaml')) as { steps: Array<{ id: string; args: string[] }> }
  const ids = build.steps.map(s => s.id)
  assert.deepEqual(ids, ['test', 'build-relay', 'push-relay', 'deploy-relay', 'build-mailbox-api', 'push-mailbox-api', 'deploy-mailbox-api'])
  assert.match(build.steps[0]?.args.join(' ') ?? '', /npm test/)
  const deploy = build.steps[3]?.args ?? []
  assert.ok(deploy.includes('--min-instances=1') && deploy.includes('--max-instances=1'))
  assert.ok(deploy.includes('--no-allow-unauthenticated'))
  const mailbox = build.steps[6]?.args ?? []
  assert.ok(mailbox.includes('--no-allow-unauthenticated') && mailbox.some(a => a.startsWith('--max-instances=')))
})

test('the Cloud Run service pins the relay to one always-on instance with a one-hour timeout', () => {
  const service = parse(read('infra/cloudrun/relay.yaml')) as {
    spec: { template: { metadata: { annotations: Record<string, string> }; spec: { timeoutSeconds: number } } }
  }
  const annotations = service.spec.template.metadata.annotations
  assert.equal(annotations['autoscaling.knative.dev/minScale'], '1')
  assert.equal(annotations['autoscaling.knative.dev/maxScale'], '1')
  assert.equal(annotations['run.googleapis.com/cpu-throttling'], 'false')
  assert.equal(service.spec.template.spec.timeoutSeconds, 3600)
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

test('on Google Cloud the relay publishes to Pub/Sub and the mailbox API verifies the push OIDC token of the account Terraform pushes as', () => {
  type Env = { name: string; value?: string }[]
  const env = (file: string) =>
    (parse(read(file)) as { spec: { template: { spec: { containers: { env: Env }[] } } } }).spec.template.spec.containers[0]?.env ?? []
  const value = (list: Env, name: string) => list.find(e => e.name === name)?.value
  assert.equal(value(env('infra/cloudrun/relay.yaml'), 'RELAY_HINTS__TRANSPORT'), 'pubsub')
  const api = env('infra/cloudrun/mailbox-api.yaml')
  assert.match(value(api, 'HINTS_PUSH_AUDIENCE') ?? '', /^https:\/\/.+\/internal\/pubsub\/push$/)
  assert.equal(value(api, 'HINTS_PUSH_SERVICE_ACCOUNT'), 'msr-hints-push@PROJECT_ID.iam.gserviceaccount.com')
  const tf = read('infra/terraform/main.tf')
  assert.match(tf, /account_id\s*=\s*"msr-hints-push"/)
  for (const topic of ['mls-group-hints', 'noise-dm-hints']) assert.ok(tf.includes(`"${topic}"`), `topic ${topic}`)
  assert.match(tf, /oidc_token\s*{\s*service_account_email\s*=\s*google_service_account\.hints_push\.email\s*audience\s*=\s*var\.mailbox_push_url\s*}/)
  assert.match(tf, /role\s*=\s*"roles\/pubsub\.publisher"\s*member\s*=\s*"serviceAccount:\${google_service_account\.relay\.email}"/)
})

test('on Google Cloud the relay snapshots to the bucket Terraform creates, with object access only there', () => {
  const service = parse(read('infra/cloudrun/relay.yaml')) as { spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } }
  const env = service.spec.template.spec.containers[0]?.env ?? []
  assert.equal(env.find(e => e.name === 'RELAY_BACKUP__TARGET')?.value, 'gs://PROJECT_ID-msr-backups/relay')
  const tf = read('infra/terraform/main.tf')
  assert.match(tf, /resource "google_storage_bucket" "backups" {\s*name\s*=\s*"\${var\.project_id}-msr-backups"/)
  assert.match(tf, /public_access_prevention\s*=\s*"enforced"/)
  assert.match(tf, /bucket = google_storage_bucket\.backups\.name\s*role\s*=\s*"roles\/storage\.objectUser"\s*member = "serviceAccount:\${google_service_account\.relay\.email}"/)
})
