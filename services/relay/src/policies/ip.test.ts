import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { describe, it } from 'node:test'
import { clientIp, ipSet, normalizeIp } from './ip.js'

/** The parts of an upgrade request clientIp reads. */
const request = (peer: string | undefined, forwardedFor?: string | string[]): Pick<IncomingMessage, 'headers' | 'socket'> =>
  ({
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
    socket: { remoteAddress: peer },
  }) as unknown as Pick<IncomingMessage, 'headers' | 'socket'>

describe('normalizeIp', () => {
  it('turns an IPv4-mapped IPv6 address into plain IPv4 and leaves others alone', () => {
    assert.equal(normalizeIp('::ffff:10.1.2.3'), '10.1.2.3')
    assert.equal(normalizeIp('::FFFF:10.1.2.3'), '10.1.2.3')
    assert.equal(normalizeIp('10.1.2.3'), '10.1.2.3')
    assert.equal(normalizeIp('2001:db8::1'), '2001:db8::1')
    assert.equal(normalizeIp('::1'), '::1')
  })
})

describe('clientIp', () => {
  it('is the TCP peer without trusted proxies, whatever X-Forwarded-For says', () => {
    assert.equal(clientIp(request('10.0.0.7'), 0), '10.0.0.7')
    assert.equal(clientIp(request('10.0.0.7', '203.0.113.9'), 0), '10.0.0.7')
  })

  it('normalises an IPv4-mapped IPv6 peer', () => {
    assert.equal(clientIp(request('::ffff:127.0.0.1'), 0), '127.0.0.1')
    assert.equal(clientIp(request('::1'), 0), '::1')
  })

  it('with one trusted proxy takes the right-most entry; forged entries to its left change nothing', () => {
    assert.equal(clientIp(request('10.0.0.1', '203.0.113.9'), 1), '203.0.113.9')
    assert.equal(clientIp(request('10.0.0.1', '1.1.1.1, 203.0.113.9'), 1), '203.0.113.9')
    assert.equal(clientIp(request('10.0.0.1', '1.1.1.1,2.2.2.2 ,  203.0.113.9'), 1), '203.0.113.9')
    assert.equal(clientIp(request('10.0.0.1', '2001:db8::9'), 1), '2001:db8::9')
    assert.equal(clientIp(request('10.0.0.1', '::ffff:203.0.113.9'), 1), '203.0.113.9')
  })

  it('with two trusted proxies takes the second entry from the right; forged entries to its left change nothing', () => {
    // client → proxy A (appends the client) → proxy B (appends proxy A) → relay (peer: proxy B)
    assert.equal(clientIp(request('10.0.0.2', '203.0.113.9, 10.0.0.1'), 2), '203.0.113.9')
    assert.equal(clientIp(request('10.0.0.2', '6.6.6.6, 7.7.7.7, 203.0.113.9, 10.0.0.1'), 2), '203.0.113.9')
  })

  it('reads repeated X-Forwarded-For headers as one list', () => {
    assert.equal(clientIp(request('10.0.0.1', ['6.6.6.6', '203.0.113.9']), 1), '203.0.113.9')
    assert.equal(clientIp(request('10.0.0.2', ['203.0.113.9', '10.0.0.1']), 2), '203.0.113.9')
  })

  it('falls back to the peer when the header has fewer entries than trusted proxies, or none', () => {
    assert.equal(clientIp(request('10.0.0.2', '203.0.113.9'), 2), '10.0.0.2')
    assert.equal(clientIp(request('10.0.0.2'), 1), '10.0.0.2')
    assert.equal(clientIp(request('10.0.0.2', ''), 1), '10.0.0.2')
  })

  it('falls back to the peer when the entry at the trusted position is not an address, never to an entry further left', () => {
    assert.equal(clientIp(request('10.0.0.1', 'not-an-ip'), 1), '10.0.0.1')
    assert.equal(clientIp(request('10.0.0.1', '203.0.113.9, garbage'), 1), '10.0.0.1')
    assert.equal(clientIp(request('10.0.0.1', '203.0.113.9:4711'), 1), '10.0.0.1')
    assert.equal(clientIp(request('10.0.0.1', '203.0.113.9, '), 1), '10.0.0.1')
    assert.equal(clientIp(request('10.0.0.1', '999.1.1.1'), 1), '10.0.0.1')
    assert.equal(clientIp(request('10.0.0.2', 'unknown, 10.0.0.1'), 2), '10.0.0.2')
  })
})

describe('ipSet', () => {
  it('matches single IPv4 addresses exactly', () => {
    const set = ipSet(['10.0.0.1', '192.0.2.7'])
    assert.equal(set.size, 2)
    assert.equal(set.has('10.0.0.1'), true)
    assert.equal(set.has('192.0.2.7'), true)
    assert.equal(set.has('10.0.0.2'), false)
    assert.equal(set.has('192.0.2.70'), false)
  })

  it('matches an IPv4 address given in its IPv4-mapped IPv6 form', () => {
    assert.equal(ipSet(['10.0.0.1']).has('::ffff:10.0.0.1'), true)
  })

  it('accepts an IPv4-mapped IPv6 entry as the IPv4 address it maps', () => {
    const set = ipSet(['::ffff:10.0.0.1'])
    assert.equal(set.has('10.0.0.1'), true)
    assert.equal(set.has('10.0.0.2'), false)
  })

  it('covers exactly the 256 addresses of a /24', () => {
    const set = ipSet(['192.168.1.0/24'])
    assert.equal(set.has('192.168.1.0'), true)
    assert.equal(set.has('192.168.1.1'), true)
    assert.equal(set.has('192.168.1.255'), true)
    assert.equal(set.has('192.168.0.255'), false)
    assert.equal(set.has('192.168.2.0'), false)
  })

  it('matches IPv6 addresses in any spelling', () => {
    const set = ipSet(['2001:db8::1'])
    assert.equal(set.has('2001:db8::1'), true)
    assert.equal(set.has('2001:0db8:0000:0000:0000:0000:0000:0001'), true)
    assert.equal(set.has('2001:DB8::1'), true)
    assert.equal(set.has('2001:db8::2'), false)
  })

  it('covers exactly a /64', () => {
    const set = ipSet(['2001:db8:1:2::/64'])
    assert.equal(set.has('2001:db8:1:2::'), true)
    assert.equal(set.has('2001:db8:1:2::1'), true)
    assert.equal(set.has('2001:db8:1:2:ffff:ffff:ffff:ffff'), true)
    assert.equal(set.has('2001:db8:1:1:ffff:ffff:ffff:ffff'), false)
    assert.equal(set.has('2001:db8:1:3::'), false)
  })

  it('mixes IPv4 and IPv6 entries without confusing them', () => {
    const set = ipSet(['10.0.0.0/8', '2001:db8::/32'])
    assert.equal(set.has('10.200.3.4'), true)
    assert.equal(set.has('2001:db8:ffff::1'), true)
    assert.equal(set.has('11.0.0.1'), false)
    assert.equal(set.has('2001:db9::1'), false)
    // ::a00:1 carries the bits of 10.0.0.1 but is not IPv4-mapped: a different address.
    assert.equal(set.has('::a00:1'), false)
    assert.equal(ipSet(['0.0.0.0/0']).has('2001:db8::1'), false)
    assert.equal(ipSet(['2001:db8::/32']).has('32.1.13.184'), false)
    assert.equal(ipSet(['::1']).has('0.0.0.1'), false)
    assert.equal(ipSet(['0.0.0.1']).has('::1'), false)
  })

  it('holds nothing when empty, and nothing that is not an address', () => {
    const empty = ipSet([])
    assert.equal(empty.size, 0)
    assert.equal(empty.has('127.0.0.1'), false)
    assert.equal(empty.has('::1'), false)
    const all = ipSet(['0.0.0.0/0'])
    assert.equal(all.has(''), false)
    assert.equal(all.has('garbage'), false)
    assert.equal(all.has('10.0.0.1/8'), false)
  })

  it('gives the same answers asked again, past the number of addresses it remembers', () => {
    const set = ipSet(['10.0.0.0/24'])
    for (let round = 0; round < 2; round++)
      for (let i = 0; i < 5000; i++) {
        const ip = `10.0.${i >> 8}.${i & 255}`
        assert.equal(set.has(ip), i < 256, ip)
      }
  })
})
