// Behind the Google Cloud load balancer, X-Forwarded-For reaches a service as
// "<whatever the client sent>, <client-ip>, <load-balancer-ip>". Both services run here with the
// trusted-proxy count infra/terraform gives them, behind a request shaped like that: a client that puts
// an allowed address in front of its own is judged by its own.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { containerEnv, loadTerraform, resource } from './terraform.js'
import { freePort, MAILBOX_CLI, RELAY_CLI, removeDir, spawnService, tempDir, waitReady, type Service } from './platform.js'

const ALLOWED = '203.0.113.7'
const STRANGER = '198.51.100.23'
/** The load balancer's own address, last in the header (a Google front end). */
const LOAD_BALANCER = '35.191.0.1'
/** What the load balancer makes of a client at `client` that sent `sent` itself. */
const forwarded = (sent: string | undefined, client: string) => [sent, client, LOAD_BALANCER].filter(Boolean).join(', ')

let proxies: { relay: string; mailbox: string }

before(async () => {
  const tf = await loadTerraform()
  const relay = containerEnv(resource(tf, 'google_cloud_run_v2_service', 'relay')).get('RELAY_NETWORK__TRUSTED_PROXIES')?.value
  const mailbox = containerEnv(resource(tf, 'google_cloud_run_v2_service', 'mailbox_api')).get('TRUSTED_PROXIES')?.value
  assert.ok(typeof relay === 'string' && typeof mailbox === 'string', 'Terraform sets both')
  proxies = { relay, mailbox }
})

describe('the relay behind the load balancer', () => {
  let dir: string
  let relay: Service
  let url: string

  before(async () => {
    dir = await tempDir()
    const port = await freePort()
    url = `ws://127.0.0.1:${port}`
    relay = spawnService(RELAY_CLI, ['serve'], {
      PORT: String(port),
      RELAY_DATA__PATH: join(dir, 'relay'),
      RELAY_NETWORK__TRUSTED_PROXIES: proxies.relay,
      RELAY_AUTH__REQ__IP_WHITELIST: `["${ALLOWED}"]`,
    })
    await waitReady(relay, `http://127.0.0.1:${port}/readyz`, 'the relay')
  })

  after(async () => {
    await relay?.stop()
    await removeDir(dir)
  })

  /** The first answer to one REQ from a connection whose upgrade carried `xff`. */
  const reqAnswer = async (xff: string): Promise<unknown[]> => {
    const ws = new WebSocket(url, { headers: { 'x-forwarded-for': xff } })
    try {
      const answer = new Promise<unknown[]>((resolve, reject) => {
        ws.on('message', data => {
          const message = JSON.parse(String(data)) as unknown[]
          if (message[0] === 'EOSE' || message[0] === 'CLOSED') resolve(message)
        })
        ws.once('error', reject)
      })
      await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)))
      ws.send(JSON.stringify(['REQ', 's', { kinds: [1], limit: 1 }]))
      return await answer
    } finally {
      ws.close()
    }
  }

  it('judges a client by the address the load balancer saw, not the one it wrote in front', async () => {
    assert.deepEqual(await reqAnswer(forwarded(undefined, ALLOWED)), ['EOSE', 's'])
    assert.deepEqual(await reqAnswer(forwarded('10.0.0.1', ALLOWED)), ['EOSE', 's'], 'a stray leading entry changes nothing')
    const spoofed = await reqAnswer(forwarded(ALLOWED, STRANGER))
    assert.equal(spoofed[0], 'CLOSED')
    assert.match(String(spoofed[2]), /^restricted: reading is not allowed from your address/)
  })
})

describe('the mailbox API behind the load balancer', () => {
  let dir: string
  let mailbox: Service
  let base: string
  const token = 'admin-token-for-the-forwarded-test'

  before(async () => {
    dir = await tempDir()
    const [port, pg] = [await freePort(), await freePort()]
    base = `http://127.0.0.1:${port}`
    mailbox = spawnService(MAILBOX_CLI, ['serve'], {
      PORT: String(port),
      MAILBOX_DATA_DIR: join(dir, 'postgres'),
      MAILBOX_EMBEDDED_PG_PORT: String(pg),
      TRUSTED_PROXIES: proxies.mailbox,
      ADMIN_TOKEN: token,
      ADMIN_IP_ALLOWLIST: ALLOWED,
    })
    await waitReady(mailbox, `${base}/readyz`, 'the mailbox API')
  })

  after(async () => {
    await mailbox?.stop()
    await removeDir(dir)
  })

  const adminList = (xff: string) => fetch(`${base}/api/v1/groups`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': xff } })

  it('judges a client by the address the load balancer saw, not the one it wrote in front', async () => {
    assert.equal((await adminList(forwarded(undefined, ALLOWED))).status, 200)
    assert.equal((await adminList(forwarded('10.0.0.1', ALLOWED))).status, 200)
    const spoofed = await adminList(forwarded(ALLOWED, STRANGER))
    assert.equal(spoofed.status, 401)
    assert.equal(((await spoofed.json()) as { error: { code: string } }).error.code, 'ADMIN_AUTH_REQUIRED')
  })
})
