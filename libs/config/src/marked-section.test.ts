import assert from 'node:assert/strict'
import { test } from 'node:test'
import { replaceMarkedSection, sectionMarkers } from './marked-section.js'

test('replaces only the text between the markers, and says when they are missing', () => {
  const { start, end } = sectionMarkers('ref')
  const doc = `intro\n${start}\nold\n${end}\noutro\n`
  assert.equal(replaceMarkedSection(doc, 'ref', 'new\n'), `intro\n${start}\n\nnew\n\n${end}\noutro\n`)
  assert.equal(replaceMarkedSection('no markers', 'ref', 'x'), undefined)
  assert.equal(replaceMarkedSection(`${end}\n${start}`, 'ref', 'x'), undefined)
})
