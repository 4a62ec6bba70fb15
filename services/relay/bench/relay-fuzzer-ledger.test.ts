// The fuzzer's bookkeeping of what each window is owed (relay-fuzzer.ts): a REQ superseded by a later REQ of
// the same id may be answered or not, and when it is answered first its EOSE settles the replacement's entry,
// so the replacement's own EOSE can come after the window finished. That late answer must be settled by what
// the window left, while an answer owed by nothing is still caught.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { carryOver, LEFTOVER_WINDOWS, settleAnswer, supersede, type OwedAnswers } from './relay-fuzzer.js'

type Entry = { name: string; req: boolean }

const window = (...entries: Array<[key: string, entry: Entry]>): OwedAnswers<Entry> => {
  const owed: OwedAnswers<Entry> = new Map()
  for (const [key, entry] of entries) {
    if (entry.req) supersede(owed, key.slice('sub:'.length))
    const slot = owed.get(key) ?? { required: [], optional: [] }
    slot.required.push(entry)
    owed.set(key, slot)
  }
  return owed
}

const owing = (owed: OwedAnswers<Entry>): boolean => [...owed.values()].some(e => e.required.length > 0)

describe('the fuzzer’s ledger of owed answers', () => {
  it('settles the replacement’s EOSE in a later window when the superseded REQ was answered first', () => {
    const first = window(['sub:x', { name: 'REQ x #1', req: true }], ['sub:x', { name: 'REQ x #2', req: true }])
    assert.deepEqual(first.get('sub:x')?.optional.map(e => e.name), ['REQ x #1'], 'the first REQ may go unanswered')
    // The superseded REQ's EOSE comes first and settles what is owed: the window owes nothing more.
    assert.equal(settleAnswer(first, [], 'sub:x')?.name, 'REQ x #2')
    assert.equal(owing(first), false)
    let leftovers = carryOver(first, [])
    // The replacement's own EOSE arrives while the next window is open.
    const second = window(['ok:abc', { name: 'EVENT abc', req: false }])
    assert.equal(settleAnswer(second, leftovers, 'sub:x')?.name, 'REQ x #1', 'settled by what the first window left')
    // A further EOSE of x is owed by nothing.
    assert.equal(settleAnswer(second, leftovers, 'sub:x'), undefined)
    assert.equal(settleAnswer(second, leftovers, 'ok:abc')?.name, 'EVENT abc')
    leftovers = carryOver(second, leftovers)
    assert.equal(settleAnswer(new Map(), leftovers, 'sub:x'), undefined)
  })

  it('keeps what a window left for LEFTOVER_WINDOWS windows, no longer', () => {
    const first = window(['sub:y', { name: 'REQ y #1', req: true }], ['sub:y', { name: 'REQ y #2', req: true }])
    settleAnswer(first, [], 'sub:y')
    let leftovers = carryOver(first, [])
    for (let i = 1; i < LEFTOVER_WINDOWS; i++) leftovers = carryOver(new Map(), leftovers)
    assert.equal(leftovers.length, LEFTOVER_WINDOWS)
    assert.equal(settleAnswer(undefined, leftovers, 'sub:y')?.name, 'REQ y #1', `still settled after ${LEFTOVER_WINDOWS} windows`)
    const again = window(['sub:y', { name: 'REQ y #3', req: true }], ['sub:y', { name: 'REQ y #4', req: true }])
    settleAnswer(again, [], 'sub:y')
    leftovers = carryOver(again, [])
    for (let i = 0; i < LEFTOVER_WINDOWS; i++) leftovers = carryOver(new Map(), leftovers)
    assert.equal(settleAnswer(undefined, leftovers, 'sub:y'), undefined, 'forgotten after that')
  })

  it('never makes a COUNT’s answer optional: only REQs are superseded', () => {
    const owed: OwedAnswers<Entry> = new Map([['sub:z', { required: [{ name: 'COUNT z', req: false }], optional: [] }]])
    supersede(owed, 'z')
    assert.deepEqual(owed.get('sub:z')?.required.map(e => e.name), ['COUNT z'])
    assert.deepEqual(carryOver(owed, [])[0]?.size, 0)
  })
})
